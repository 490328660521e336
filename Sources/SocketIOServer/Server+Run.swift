import Foundation
import Logging
import ServiceLifecycle

extension Server {
    /// Runs the server and `services` in one `ServiceGroup` until SIGINT or SIGTERM, announcing
    /// the bound address on stdout (`sio: listening on HOST:PORT`) so that scripts started with
    /// `--port 0` can find it.
    ///
    /// `announceFirst` prints the lines of other listeners (the admin endpoint) before that one,
    /// so that a script that waits for "listening" has them all; when it returns false (a
    /// listener could not bind), "listening" is never said and the group's error ends the run.
    ///
    /// `underneath` start before the server and stop after it (a group stops its services last
    /// first): the cluster link, which carries the server's last disconnects to other nodes.
    public func runUntilSignalled(logger: Logger, underneath: [any Service] = [], beside services: [any Service] = [],
                                  announceFirst: @escaping @Sendable () async -> Bool = { true }) async throws {
        let group = ServiceGroup(
            configuration: .init(services: underneath + [self] + services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let announcer = Task {
            let address = try? await self.localAddress
            guard await announceFirst(), let address else { return }
            print("sio: listening on \(address.ipAddress ?? "?"):\(address.port ?? 0)")
            fflush(nil)  // stdout, which may be a pipe (block-buffered)
        }
        // Not awaited: when a listener fails to bind, its address never comes.
        defer { announcer.cancel() }
        try await group.run()
    }
}
