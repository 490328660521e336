import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What every connection of one server shares: configuration, application, and the registries.
final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let application: Application
    let logger: Logger
    let sessions = NIOLockedValueBox<[String: EngineSession]>([:])
    let namespaces: [String: NamespaceRegistry]
    let clientScript: ClientScript
    /// Once set, new sessions are refused: the server is going away.
    let shuttingDown = NIOLockedValueBox(false)
    let connectionLimits: ConnectionLimits
    let disconnects = DisconnectCounts()
    let metrics: ServerMetrics?
    /// The other nodes, with `--cluster`; nil for a single process.
    let cluster: (any ClusterLink)?
    /// Connection state recovery, when on.
    let recovery: RecoverySettings?
    /// Sockets whose transport is lost and that may be recovered, by private id.
    let recoverable = NIOLockedValueBox<[String: Socket]>([:])
    /// Clients come back from another node of the cluster, waiting for its answer, by private id.
    let claims = NIOLockedValueBox<[String: PendingClaim]>([:])

    init(configuration: ServerConfiguration, application: Application, logger: Logger,
         metricsFactory: any MetricsFactory = MetricsSystem.factory, cluster: (any ClusterLink)? = nil) {
        self.cluster = cluster
        self.recovery = configuration.recoveryWindow.map { RecoverySettings(window: $0, maxBytes: configuration.recoveryBuffer) }
        self.configuration = configuration
        self.application = application
        self.logger = logger
        self.connectionLimits = ConnectionLimits(maxTotal: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerAddress)
        var namespaces: [String: NamespaceRegistry] = [:]
        for name in configuration.namespaces.union(["/"]) { namespaces[name] = NamespaceRegistry(name: name, cluster: cluster) }
        self.namespaces = namespaces
        self.metrics = configuration.metrics ? ServerMetrics(namespaces: namespaces.keys, factory: metricsFactory) : nil
        self.clientScript = ClientScript(officialClientPath: configuration.clientScriptPath)
        if !clientScript.isAvailable {
            logger.warning("\(ClientScript.missingMessage); \(configuration.path)socket.io.js answers 404 until then")
        }
    }

    func session(_ id: String) -> EngineSession? {
        sessions.withLockedValue { $0[id] }
    }

    func register(_ session: EngineSession) -> Bool {
        if shuttingDown.withLockedValue({ $0 }) { return false }
        sessions.withLockedValue { $0[session.id] = session }
        return true
    }

    func unregister(_ session: EngineSession) {
        sessions.withLockedValue { _ = $0.removeValue(forKey: session.id) }
    }

    var handshakeJSON: (_ sid: String, _ upgrades: Bool) -> String {
        { [configuration] sid, upgrades in
            #"{"sid":"\#(sid)","upgrades":[\#(upgrades ? #""websocket""# : "")],"pingInterval":\#(configuration.pingInterval),"pingTimeout":\#(configuration.pingTimeout),"maxPayload":\#(configuration.maxPayload)}"#
        }
    }
}
