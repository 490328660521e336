import Foundation
import Logging
import ServiceLifecycle

extension SocketIOServer {
    /// Runs until SIGINT or SIGTERM, with `admin` beside it when given, announcing the bound
    /// addresses on stdout (`sio: listening on HOST:PORT`, `sio: admin on HOST:PORT`) so that
    /// scripts started with `--port 0` can find them.
    public func runUntilSignalled(logger: Logger, admin: AdminServer? = nil) async throws {
        var services: [Service] = [self]
        if let admin { services.append(admin) }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        async let announced: Void = {
            if let address = try? await self.localAddress {
                print("sio: listening on \(address.ipAddress ?? "?"):\(address.port ?? 0)")
            }
            if let admin, let address = try? await admin.localAddress {
                print("sio: admin on \(address.ipAddress ?? "?"):\(address.port ?? 0)")
            }
            fflush(stdout)
        }()
        try await group.run()
        await announced
    }
}
