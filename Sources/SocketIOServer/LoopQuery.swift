import Atomics
import NIOCore

/// Asks an event loop for something on behalf of an operator (`/sockets`, `/metrics`), waiting
/// at most `timeout`: a stalled loop must not hang the request that asks about it, nor every
/// later scrape.
enum LoopQuery {
    static func ask<T: Sendable>(_ loop: EventLoop, within timeout: Duration = .seconds(1),
                                 _ body: @escaping @Sendable () -> T) async -> T? {
        let future = loop.submit(body)
        let answered = ManagedAtomic(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            future.whenComplete { result in
                if answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
                    continuation.resume(returning: try? result.get())
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                if answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
                    continuation.resume(returning: nil)
                }
            }
        }
    }
}
