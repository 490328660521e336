import Foundation
import Logging
import ServiceLifecycle

extension SocketIOServer {
    /// Runs until SIGINT or SIGTERM, announcing the bound address on stdout as
    /// `sio: listening on HOST:PORT` so that scripts started with `--port 0` can find it.
    public func runUntilSignalled(logger: Logger) async throws {
        let group = ServiceGroup(
            configuration: .init(services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        async let announced: Void = {
            if let address = try? await self.localAddress {
                print("sio: listening on \(address.ipAddress ?? "?"):\(address.port ?? 0)")
                fflush(stdout)
            }
        }()
        try await group.run()
        await announced
    }
}
