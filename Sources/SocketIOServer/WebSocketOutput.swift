import NIOConcurrencyHelpers
import NIOCore

/// Writes pre-encoded frames to one WebSocket, and flushes once per event-loop tick.
///
/// The frames bypass NIO's `WebSocketFrameEncoder`: they are written from a handler at the head
/// of the pipeline. Flushing is deferred to the end of the current batch of tasks, so that all
/// messages for this socket produced while handling one read go out in one `writev`.
final class WebSocketOutput: @unchecked Sendable {
    let channel: Channel
    private let head: HeadWriter
    private let flusher: FlushBatcher
    private var flushPending = false

    init(channel: Channel, head: HeadWriter) {
        self.channel = channel
        self.head = head
        self.flusher = FlushBatcher.forLoop(channel.eventLoop)
    }

    func write(_ message: OutboundMessage) {
        if channel.eventLoop.inEventLoop {
            writeOnLoop(message.webSocketFrames)
        } else {
            channel.eventLoop.execute { self.writeOnLoop(message.webSocketFrames) }
        }
    }

    private func writeOnLoop(_ frames: ByteBuffer) {
        guard let context = head.context else { return }
        context.write(NIOAny(frames), promise: nil)
        guard !flushPending else { return }
        flushPending = true
        flusher.enqueue(self)
    }

    /// Called by the batcher once per tick.
    func flush() {
        flushPending = false
        head.context?.flush()
    }
}

/// Sits at the head of a WebSocket pipeline only to lend its context to `WebSocketOutput`;
/// below the frame encoder everything outbound is bytes, which it passes on untouched.
final class HeadWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer

    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}

/// Flushes, once per event-loop tick, every WebSocket written to during that tick: a broadcast
/// to a thousand sockets schedules one task, not a thousand.
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
