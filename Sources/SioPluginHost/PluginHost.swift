import CSioPlugin
import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import SocketIOCodec
import SocketIOServer

/// Hosts handler plugins: loads them, and turns the server's events into handler calls.
///
/// The loaded set is an immutable array swapped under a lock; each event takes the current
/// array once and runs on it, so a reload never changes the handlers under a running event.
public final class PluginHost: Application, Sendable {
    public struct Configuration: Sendable {
        /// Where `*.so` plugins are loaded from; nil loads none.
        public var directory: String?
        /// `SOCKETIO_MESSAGE_LOG_FORMAT`; nil turns the message log off.
        public var messageLogFormat: String? = MessageLog.defaultFormat
        /// How long a reload waits for running handlers of the set it replaces, new events
        /// waiting meanwhile. Past it the reload is not done and the serving versions stay: a
        /// handler stuck for good must not freeze every socket.
        public var drainTimeout: Duration = .seconds(1)
        /// Where each new build is first mapped in a child process; nil maps it in the server
        /// only (the ELF check still runs).
        public var probe: PluginProbe?
        /// A handler running longer than this is logged (plugin, version, event, socket) by a
        /// watchdog thread, and again every 10 s while it runs; nil turns the watchdog off.
        public var handlerWarnThreshold: Duration? = .milliseconds(500)
        /// How long an event a handler deferred (ABI 1.3) may wait for its completion: a
        /// plugin whose check never answers must not keep a client unconnected, or its next
        /// events held, for ever. Past it a connection or subscription is refused "timed out"
        /// and a message is released with on_error.
        public var pendingTimeout: Duration = .seconds(10)
        /// Isolated mode: each plugin runs in a process of its own (`runner`), so that a
        /// segfault, an abort or a hang costs that process, never a connection; without it only
        /// files named `NAME.isolated.so` do. docs/operations.md, "Isolated plugins".
        public var isolated = false
        /// The plugin runner's command line before `--fd N`: `sio plugin-runner`; nil runs no
        /// plugin isolated (a `NAME.isolated.so` is refused).
        public var runner: [String]?
        /// A runner whose handler runs longer than this (timed in the runner: not the time an
        /// event queued or was deferred) is killed and restarted.
        public var handlerTimeout: Duration = .seconds(5)

        public init(directory: String? = nil) {
            self.directory = directory
        }
    }

    let logger: Logger
    let configuration: Configuration
    let messageLog: MessageLog?
    let current = NIOLockedValueBox(PluginSet([]))
    /// Set once, by `attach`; read on every broadcast, so without a lock.
    let attached = ManagedAtomicLazyReference<Server>()
    let loader: PluginLoader
    /// Reloads run one at a time, whatever triggered them.
    let reloadLock = NIOLock()
    let reloadQueue = DispatchQueue(label: "sio.plugin-reload")
    let reloadHistory = ReloadHistory()
    let tickets = PendingTickets()
    /// Set with the first plugin runner (isolated mode, or a `NAME.isolated.so`).
    let hasRunners = ManagedAtomic<Bool>(false)

    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.messageLog = configuration.messageLogFormat.map { MessageLog(format: $0) }
        self.loader = try PluginLoader(probe: configuration.probe)
        if let threshold = configuration.handlerWarnThreshold {
            HandlerWatchdog(threshold: threshold, logger: logger).start()
        }
    }

    /// The server out-of-band calls go through; set once, before clients connect.
    public func attach(_ server: Server) {
        _ = attached.storeIfNilThenLoad(server)
    }

    var plugins: [LoadedPlugin] { current.withLockedValue { $0.plugins } }

    /// Throws when the plugins directory is missing or unsafe: at start-up that is an error, not
    /// a server with no handlers.
    public func checkDirectory() throws(PluginLoadError) {
        guard let directory = configuration.directory else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .unusableDirectory("plugins directory \(directory) does not exist or is not a directory")
        }
        try PluginFileCheck.check(directory, what: "plugins directory")
    }

    /// Loads every `*.so` of the plugins directory, in file-name order.
    @discardableResult
    public func loadAll() -> [PluginLoadReport] { reload() }
}
