import ArgumentParser
import CoreMetrics
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import SioAdmin
import SioCluster
import SioPluginHost
import SocketIOServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the server.",
        discussion: """
            Environment: SOCKETIO_HOST and SOCKETIO_PORT are honoured when the flags are not given; \
            SOCKETIO_MESSAGE_LOG_FORMAT sets the message log format ("none" turns it off); \
            SIO_ADMIN_TOKEN is the admin token when --admin-token is not given.
            """
    )

    @Option(help: "Interface to bind (default 127.0.0.1, or $SOCKETIO_HOST).")
    var host: String?

    @Option(help: "TCP port; 0 picks a free one (default 8000, or $SOCKETIO_PORT).")
    var port: Int?

    @Option(help: "Engine.IO path.")
    var path: String = "/socket.io/"

    @Option(help: "Directory of handler plugins (*.so).")
    var plugins: String?

    @Option(name: .customLong("static"), help: "Directory of files served outside the Engine.IO path.")
    var staticDirectory: String?

    @Option(name: .customLong("namespace"), help: "A namespace besides '/'; repeatable.")
    var namespaces: [String] = []

    @Option(help: "Milliseconds between server pings.")
    var pingInterval: Int64 = 25_000

    @Option(help: "Milliseconds a client has to answer a ping.")
    var pingTimeout: Int64 = 20_000

    @Option(help: "Largest message or polling body accepted, in bytes.")
    var maxPayload: Int = 1_000_000

    @Option(help: "Milliseconds a client may stay without a Socket.IO CONNECT.")
    var connectTimeout: Int64 = 45_000

    @Option(help: "The official socket.io.min.js 4.8.1, served with the channels extension at <path>socket.io.js (scripts/fetch-client gets it; default: .cache/client/ of the checkout sio was built in, of the current directory, or /usr/local/share/sio/).")
    var clientScript: String?

    @Option(name: .customLong("trusted-proxy"), help: "A proxy address whose X-Forwarded-For is believed; repeatable.")
    var trustedProxies: [String] = []

    @Option(help: "Channels one socket may be in at once.")
    var maxChannels: Int = 100

    @Option(name: .customLong("cors-origin"), help: "An origin allowed by CORS ('*' for any); repeatable.")
    var corsOrigins: [String] = []

    @Option(help: "Admin endpoint interface (sio broadcast/send/plugins/reload talk to it).")
    var adminHost: String = "127.0.0.1"

    @Option(help: "Admin endpoint port (default: the server's port + 1; 0 when --port is 0).")
    var adminPort: Int?

    @Option(help: "Token the admin endpoint requires (default $SIO_ADMIN_TOKEN); needed off loopback.")
    var adminToken: String?

    @Flag(inversion: .prefixedNo, help: "Reload plugins when files in --plugins change (SIGHUP and sio reload always do).")
    var watch = true

    @Flag(inversion: .prefixedNo, help: "Map each new plugin build in a child process first, so that a file the dynamic loader cannot take is refused instead of crashing the server.")
    var probePlugins = true

    @Flag(help: "Run without the admin endpoint.")
    var noAdmin = false

    @Flag(inversion: .prefixedNo, help: "Count traffic, sockets and handler times for Prometheus at the admin endpoint's /metrics.")
    var metrics = true

    @Option(help: "Event-loop threads (default: one per core).")
    var threads: Int?

    @Option(help: "Milliseconds after which a running handler is logged as too long (0: never).")
    var handlerWarnMs: Int64 = 500

    @Flag(help: "Run each plugin in a process of its own (without it, only files named NAME.isolated.so): a handler that crashes or hangs costs that process, never a connection.")
    var isolatePlugins = false

    @Option(help: "Milliseconds an isolated plugin (--isolate-plugins, or a file NAME.isolated.so) may take over one event before its process is killed and restarted.")
    var handlerTimeout: Int64 = 5_000

    @Option(help: "Milliseconds an event a handler deferred may wait for its completion; past it a connection or subscription is refused 'timed out' and a message released with on_error.")
    var pendingTimeout: Int64 = 10_000

    @Option(help: "Connections held at once; one more is answered 503 (0: no limit).")
    var maxConnections: Int = 0

    @Option(name: .customLong("max-connections-per-ip"), help: "Connections one client address holds at once (X-Forwarded-For from a --trusted-proxy); one more is answered 429 (0: no limit).")
    var maxConnectionsPerIP: Int = 0

    @Option(help: "Events one socket may send a second; past it they are dropped with on_error 'rate limited' (0: no limit).")
    var maxEventsPerSecond: Int = 0

    @Option(help: "Events one socket may send at once before the rate applies (default: the rate).")
    var eventBurst: Int?

    @Option(help: "Bytes that may wait to be sent to one client; past it the client is dropped as a slow consumer.")
    var maxOutboundBytes: Int = 1 << 20

    @Option(help: "Milliseconds a connection may take to send a request head, or stay idle between requests.")
    var headerTimeout: Int64 = 10_000

    @Option(help: "Milliseconds SIGTERM/SIGINT waits for every socket to finish; past it the server exits non-zero.")
    var shutdownTimeout: Int64 = 10_000

    @Option(help: "Milliseconds a client whose connection was lost may take to come back and get its socket, channels, context and missed messages back (connection state recovery, as socket.io's maxDisconnectionDuration; 0: off). See docs/events.md, \"Recovery\".")
    var recoveryWindow: Int64 = 0

    @Option(help: "Bytes of recent messages kept for recovery per channel (its broadcasts, once) and per socket (what else it is sent); a client that missed more gets a new socket.")
    var recoveryBuffer: Int = 256 * 1024

    @Option(help: "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?channel=NAME]: join the cluster of the nodes sharing this database (default $SIO_CLUSTER; none: this process is the whole server). See docs/deployment.md.")
    var cluster: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "text, or json (one object per line); timestamps in UTC with milliseconds either way.")
    var logFormat: LogFormat = .text

    func validate() throws {
        for namespace in namespaces where !namespace.hasPrefix("/") {
            throw ValidationError("a namespace starts with '/': \(namespace)")
        }
        guard pingInterval > 0, pingTimeout > 0, connectTimeout > 0 else {
            throw ValidationError("intervals and timeouts must be positive")
        }
        guard maxPayload > 0 else { throw ValidationError("--max-payload must be positive") }
        guard maxOutboundBytes >= 1024 else { throw ValidationError("--max-outbound-bytes must be at least 1024") }
        for (flag, value) in [("--port", port), ("--admin-port", adminPort)] {
            if let value, !(0...65535).contains(value) { throw ValidationError("\(flag) must be a port number (0-65535), got \(value)") }
        }
        guard recoveryWindow >= 0, recoveryBuffer >= 1024 else {
            throw ValidationError("--recovery-window must not be negative; --recovery-buffer must be at least 1024")
        }
        guard handlerWarnMs >= 0, shutdownTimeout > 0, headerTimeout > 0, pendingTimeout > 0, handlerTimeout > 0 else {
            throw ValidationError("--handler-warn-ms must not be negative; --shutdown-timeout, --header-timeout, --pending-timeout and --handler-timeout must be positive")
        }
    }

    func makeConfiguration(environment: [String: String]) throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.host = host ?? environment["SOCKETIO_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? configuration.host
        if let port {
            configuration.port = port
        } else if let value = environment["SOCKETIO_PORT"] {
            guard let port = Int(value), (0...65535).contains(port) else {
                throw ValidationError("SOCKETIO_PORT is not a port number: \(value)")
            }
            configuration.port = port
        }
        configuration.path = path
        configuration.namespaces = Set(namespaces).union(["/"])
        configuration.pingInterval = pingInterval
        configuration.pingTimeout = pingTimeout
        configuration.maxPayload = maxPayload
        configuration.connectTimeout = connectTimeout
        configuration.corsOrigins = corsOrigins
        configuration.maxChannelsPerSocket = maxChannels
        configuration.clientScriptPath = clientScript ?? Self.defaultClientScript()
        configuration.trustedProxies = Set(trustedProxies)
        configuration.staticDirectory = staticDirectory
        if let threads { configuration.threads = threads }
        configuration.shutdownTimeout = .milliseconds(shutdownTimeout)
        configuration.headerTimeout = .milliseconds(headerTimeout)
        configuration.maxOutboundBytes = maxOutboundBytes
        configuration.maxConnections = maxConnections > 0 ? maxConnections : nil
        configuration.maxEventsPerSecond = maxEventsPerSecond > 0 ? maxEventsPerSecond : nil
        configuration.eventBurst = eventBurst
        configuration.maxConnectionsPerAddress = maxConnectionsPerIP > 0 ? maxConnectionsPerIP : nil
        configuration.recoveryWindow = recoveryWindow > 0 ? .milliseconds(recoveryWindow) : nil
        configuration.recoveryBuffer = recoveryBuffer
        return configuration
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var configuration = try makeConfiguration(environment: environment)
        let format = logFormat
        let recent = RecentProblems()
        LoggingSystem.bootstrap { label in LogLineHandler(label: label, format: format, recent: recent) }
        // Before anything makes a metric: swift-metrics binds each one to the backend of the moment.
        let registry = metrics && !noAdmin ? Self.bootstrapMetrics() : nil
        configuration.metrics = registry != nil
        var logger = Logger(label: "sio")
        logger.logLevel = logLevel

        var hostConfiguration = PluginHost.Configuration(directory: plugins)
        hostConfiguration.messageLogFormat = MessageLog.from(environmentValue: environment["SOCKETIO_MESSAGE_LOG_FORMAT"])
        hostConfiguration.handlerWarnThreshold = handlerWarnMs > 0 ? .milliseconds(handlerWarnMs) : nil
        hostConfiguration.pendingTimeout = .milliseconds(pendingTimeout)
        if probePlugins, let executable = Self.executablePath {
            hostConfiguration.probe = PluginProbe(command: [executable, "probe-plugin"])
        }
        if let executable = Self.executablePath {
            hostConfiguration.runner = [executable, "plugin-runner"]
        } else if isolatePlugins {
            throw ValidationError("--isolate-plugins: cannot find this executable to start runners")
        }
        hostConfiguration.isolated = isolatePlugins
        hostConfiguration.handlerTimeout = .milliseconds(handlerTimeout)
        let host = try PluginHost(configuration: hostConfiguration, logger: logger)
        // At start-up a missing or unsafe plugins directory is an error; on a reload it is a refusal.
        try host.checkDirectory()
        host.loadAll()
        var link: PostgresCluster?
        if let url = (cluster ?? environment["SIO_CLUSTER"]).flatMap({ $0.isEmpty ? nil : $0 }) {
            do {
                link = PostgresCluster(configuration: try ClusterConfiguration(url: url), logger: logger)
            } catch {
                throw ValidationError("--cluster: \(error)")
            }
        }
        let server = Server(configuration: configuration, application: host, logger: logger, cluster: link)
        host.attach(server)

        var services: [any Service] = []
        var announceAdmin: @Sendable () async -> Bool = { true }
        if !noAdmin {
            // An empty token is no token: "Bearer " must never open the endpoint.
            let token = (adminToken ?? environment["SIO_ADMIN_TOKEN"]).flatMap { $0.isEmpty ? nil : $0 }
            guard token != nil || Self.isLoopback(adminHost) else {
                throw ValidationError("the admin endpoint on \(adminHost) needs a token (--admin-token or SIO_ADMIN_TOKEN)")
            }
            let port = adminPort ?? (configuration.port == 0 ? 0 : configuration.port + 1)
            guard port <= 65535 else {
                throw ValidationError("the admin endpoint's default port, --port + 1, is \(port): choose one with --admin-port")
            }
            let routes = AdminRoutes(host: host, server: server, metrics: registry, recent: recent, cluster: link)
            let admin = AdminServer(host: adminHost, port: port, token: token, logger: logger) { await routes.handle($0) }
            services.append(admin)
            // The admin line comes first; an endpoint that cannot bind fails the start, and
            // "listening" is never said.
            announceAdmin = {
                guard let address = try? await admin.localAddress else { return false }
                print("sio: admin on \(address.ipAddress ?? "?"):\(address.port ?? 0)")
                return true
            }
        }
        if let plugins, watch {
            services.append(PluginWatcher(directory: plugins, logger: logger) { await host.reload() })
        }
        services.append(HangupReloader(host: host, logger: logger))
        try await server.runUntilSignalled(logger: logger, underneath: link.map { [$0] } ?? [], beside: services,
                                           announceFirst: announceAdmin)
    }

    /// Prometheus as the swift-metrics backend. Handler times get buckets from 10 µs: a handler
    /// is expected to take microseconds, and the default buckets start at 5 ms.
    private static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["sio_handler_duration_seconds"] = [
            .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
            .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// Where the official client is looked for when `--client-script` is not given: the
    /// checkout the binary was built in (`.build/<config>/sio` → `.cache/client/…`), then the
    /// current directory, then `/usr/local/share/sio/`. The first that exists wins; when none
    /// does, the server says so at start and serves 404 for the script.
    static func defaultClientScript() -> String {
        let relative = ".cache/client/socket.io.min.js"
        var candidates: [String] = []
        if let executable = executablePath {
            var directory = (executable as NSString).deletingLastPathComponent
            for _ in 0..<3 {
                directory = (directory as NSString).deletingLastPathComponent
                candidates.append(directory + "/" + relative)
            }
        }
        candidates += [FileManager.default.currentDirectoryPath + "/" + relative, "/usr/local/share/sio/socket.io.min.js"]
        return candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) ?? relative
    }

    static var executablePath: String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count - 1) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

import Foundation
