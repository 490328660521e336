import NIOCore
import ServiceLifecycle

extension Channel {
    /// Waits until this listening channel closes; graceful shutdown and task cancellation (a
    /// sibling service failed) both close it.
    func serveUntilShutdown() async throws {
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await closeFuture.get()
            } onGracefulShutdown: {
                self.close(promise: nil)
            }
        } onCancel: {
            self.close(promise: nil)
        }
    }
}
