import NIOConcurrencyHelpers
import NIOCore

/// Flushes, once per event-loop tick, every WebSocket written to during that tick: a broadcast
/// to a thousand sockets schedules one task, not a thousand.
///
/// `@unchecked Sendable`: there is one per loop, found under a lock when a WebSocket opens,
/// and its queue is touched on that loop only.
final class FlushBatcher: @unchecked Sendable {
    private let loop: EventLoop
    private var pending: [WebSocketOutput] = []
    private var scheduled = false

    private static let batchers = NIOLockedValueBox<[ObjectIdentifier: FlushBatcher]>([:])

    static func forLoop(_ loop: EventLoop) -> FlushBatcher {
        batchers.withLockedValue { batchers in
            if let batcher = batchers[ObjectIdentifier(loop)] { return batcher }
            let batcher = FlushBatcher(loop: loop)
            batchers[ObjectIdentifier(loop)] = batcher
            return batcher
        }
    }

    private init(loop: EventLoop) {
        self.loop = loop
    }

    /// On `loop` only.
    func enqueue(_ output: WebSocketOutput) {
        pending.append(output)
        guard !scheduled else { return }
        scheduled = true
        loop.execute { [self] in
            scheduled = false
            let outputs = pending
            pending.removeAll(keepingCapacity: true)
            for output in outputs { output.flush() }
        }
    }
}
