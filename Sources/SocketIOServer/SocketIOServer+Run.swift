import Foundation
import Logging
import ServiceLifecycle

extension SocketIOServer {
    /// Runs until SIGINT or SIGTERM, with `admin` beside it when given, announcing the bound
    /// addresses on stdout (`sio: admin on HOST:PORT`, then `sio: listening on HOST:PORT`) so that
    /// scripts started with `--port 0` can find them.
    public func runUntilSignalled(logger: Logger, admin: AdminServer? = nil) async throws {
        var services: [Service] = [self]
        if let admin { services.append(admin) }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        // The admin line comes first: a script that waits for "listening" then has both.
        let announcer = Task {
            let address = try? await self.localAddress
            if let admin {
                // An admin endpoint that cannot bind fails the start: "listening" is never said.
                guard let adminAddress = try? await admin.localAddress else { return }
                print("sio: admin on \(adminAddress.ipAddress ?? "?"):\(adminAddress.port ?? 0)")
            }
            if let address {
                print("sio: listening on \(address.ipAddress ?? "?"):\(address.port ?? 0)")
            }
            fflush(stdout)
        }
        // Not awaited: when a listener fails to bind, its address never comes.
        defer { announcer.cancel() }
        try await group.run()
    }
}
