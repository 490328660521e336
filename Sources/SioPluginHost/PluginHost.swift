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
public final class PluginHost: Application, @unchecked Sendable {
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

        public init(directory: String? = nil) {
            self.directory = directory
        }
    }

    let logger: Logger
    private let configuration: Configuration
    private let messageLog: MessageLog?
    private let current = NIOLockedValueBox(PluginSet([]))
    private let server = NIOLockedValueBox<Server?>(nil)
    private let loader: PluginLoader
    /// Reloads run one at a time, whatever triggered them.
    private let reloadLock = NIOLock()
    private let reloadQueue = DispatchQueue(label: "sio.plugin-reload")

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
        self.server.withLockedValue { $0 = server }
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

    /// Brings the loaded set in line with the plugins directory: new files load, changed files
    /// replace their plugin, removed files retire theirs, unchanged ones stay as they are.
    ///
    /// The sequence (docs/operations.md, "Reload sequence"):
    /// 1. Each changed file is checked, mapped and described. A file refused here never
    ///    touches the version it would replace, and nothing pauses.
    /// 2. Dispatch pauses: new events wait while the serving set's running events finish
    ///    (nested events run on the set their outer event pinned, so they never wait).
    /// 3. Each replaced version's `retire` runs, with none of its handlers running or to come,
    ///    so the state it hands on counts every event it handled; the new version's `init`
    ///    receives it. Removed plugins are retired.
    /// 4. The new set is installed and dispatch resumes; retired C images are unmapped then,
    ///    since no event can reach them any more.
    ///
    /// Nothing changed: nothing pauses and nothing is retired.
    @discardableResult
    public func reload() -> [PluginLoadReport] {
        reloadLock.withLock { reloadLocked() }
    }

    /// `reload()` for async callers (the watcher, SIGHUP, the admin endpoint): it runs on a
    /// thread of its own, since it blocks (the probe child, the pause) and a task must not
    /// block the cooperative pool.
    @discardableResult
    public func reload() async -> [PluginLoadReport] {
        await withCheckedContinuation { continuation in
            reloadQueue.async { continuation.resume(returning: self.reload()) }
        }
    }

    private struct Change {
        var file: String
        var prepared: PluginLoader.Prepared
        var existing: LoadedPlugin?
        /// Initialised before the pause: the build has `adopt`.
        var initialised: LoadedPlugin?
    }

    private func reloadLocked() -> [PluginLoadReport] {
        guard let directory = configuration.directory else { return [] }
        do {
            try PluginFileCheck.check(directory, what: "plugins directory")
        } catch {
            logger.error("plugin refused: \(directory): \(error)")
            return [PluginLoadReport(file: directory, outcome: .refused(error.description))]
        }
        let serving = current.withLockedValue { $0 }.plugins
        var reports: [String: PluginLoadReport] = [:]
        var changes: [Change] = []
        let files = PluginFile.list(directory)
        for file in files {
            let existing = serving.first(where: { $0.file == file })
            guard let data = FileManager.default.contents(atPath: file).map({ [UInt8]($0) }) else {
                reports[file] = refuse(file, "cannot read the file")
                continue
            }
            if let existing, existing.contentHash == PluginFile.hash(data) {
                reports[file] = PluginLoadReport(file: file, outcome: .unchanged(existing.description))
                continue
            }
            do {
                let prepared = try loader.prepare(file: file, data: data)
                // An ABI 1.1 build runs init now, while its predecessor serves untouched.
                let initialised = prepared.adopt == nil ? nil : try loader.initialise(prepared, host: self, previousState: [])
                changes.append(Change(file: file, prepared: prepared, existing: existing, initialised: initialised))
            } catch {
                reports[file] = refuse(file, error.description)
            }
        }
        let removed = serving.filter { !files.contains($0.file) }
        guard !changes.isEmpty || !removed.isEmpty else { return files.compactMap { reports[$0] } }

        var retired: [LoadedPlugin] = []
        let paused = ContinuousClock.now
        let drained: Bool = current.withLockedValue { set in
            guard drain(set) else { return false }
            set = handOver(changes, removed: removed, files: files, from: set, reports: &reports, retired: &retired)
            return true
        }
        let pause = ContinuousClock.now - paused
        guard drained else {
            for change in changes {
                _ = change.initialised?.retire()
                change.prepared.image.close()
                reports[change.file] = refuse(change.file, "handlers of the serving version ran longer than \(configuration.drainTimeout) and the reload was not done; the serving version stays")
            }
            return files.compactMap { reports[$0] } + removed.map { PluginLoadReport(file: $0.file, outcome: .refused("not removed: the reload was not done")) }
        }
        for plugin in retired { plugin.image.close() }
        logSwitch(reports, files: files + removed.map(\.file), pause: pause)
        return files.compactMap { reports[$0] } + removed.compactMap { reports[$0.file] }
    }

    /// Steps 3 and 4 of the sequence, with dispatch paused: retires what is replaced or removed,
    /// hands each state on, and returns the set to install.
    private func handOver(_ changes: [Change], removed: [LoadedPlugin], files: [String], from set: PluginSet,
                          reports: inout [String: PluginLoadReport], retired: inout [LoadedPlugin]) -> PluginSet {
        var replacements: [String: LoadedPlugin] = [:]
        for change in changes {
            let state = change.existing?.retire() ?? []
            if let existing = change.existing { retired.append(existing) }
            let plugin: LoadedPlugin
            if let initialised = change.initialised {
                PluginLoader.hand(state, to: change.prepared.adopt!, of: initialised)
                plugin = initialised
            } else {
                do {
                    plugin = try loader.initialise(change.prepared, host: self, previousState: state)
                } catch {
                    reports[change.file] = refuse(change.file, "\(error)")
                    if let existing = change.existing, let restarted = restart(existing, state: state) {
                        replacements[change.file] = restarted
                    }
                    continue
                }
            }
            replacements[change.file] = plugin
            reports[change.file] = PluginLoadReport(
                file: change.file, outcome: change.existing == nil ? .loaded(plugin.description) : .reloaded(plugin.description))
        }
        for plugin in removed {
            _ = plugin.retire()
            retired.append(plugin)
            reports[plugin.file] = PluginLoadReport(file: plugin.file, outcome: .removed)
        }
        let changed = Set(changes.map(\.file))
        return PluginSet(files.compactMap { file in
            replacements[file] ?? (changed.contains(file) ? nil : set.plugins.first(where: { $0.file == file }))
        })
    }

    private func logSwitch(_ reports: [String: PluginLoadReport], files: [String], pause: Duration) {
        for file in files {
            guard let report = reports[file] else { continue }
            switch report.outcome {
            case .loaded(let description), .reloaded(let description):
                logger.info("plugin \(report.outcome.summary)", metadata: [
                    "plugin": "\(description.name) \(description.version) (ABI \(description.abi)) from \(file)",
                    "handlers": "\(description.handlers.count)", "pause_us": "\(pause.microseconds)"])
            case .removed:
                logger.info("plugin removed", metadata: ["plugin": "\(file)", "pause_us": "\(pause.microseconds)"])
            default:
                break
            }
        }
    }

    private func refuse(_ file: String, _ reason: String) -> PluginLoadReport {
        logger.error("plugin refused: \(file): \(reason)")
        return PluginLoadReport(file: file, outcome: .refused(reason))
    }

    /// A retired version whose successor failed to initialise: its build starts afresh from the
    /// state it handed over, so the plugin keeps serving and its count stays exact.
    private func restart(_ retired: LoadedPlugin, state: [UInt8]) -> LoadedPlugin? {
        do {
            let plugin = try loader.load(file: retired.file, data: retired.data, host: self, previousState: state)
            logger.warning("plugin restarted from its handed-over state after its successor was refused",
                           metadata: ["plugin": "\(plugin.summary)"])
            return plugin
        } catch {
            logger.error("plugin lost: its successor was refused and it could not restart: \(error)", metadata: ["plugin": "\(retired.summary)"])
            return nil
        }
    }

    /// Waits, holding the set's lock so that no new event starts, until no event runs on `set`.
    ///
    /// It spins rather than waits on a condition: the pause lasts as long as the longest running
    /// handler (0.13 ms at p99, measured), and a condition would cost every event a check of
    /// whether a reload is waiting.
    private func drain(_ set: PluginSet) -> Bool {
        let deadline = ContinuousClock.now + configuration.drainTimeout
        var spins = 0
        while set.inFlight.load(ordering: .acquiring) > 0 {
            if ContinuousClock.now > deadline { return false }
            spins += 1
            if spins < 200 { sched_yield() } else { usleep(50) }
        }
        return true
    }

    public var descriptions: [PluginDescription] { plugins.map(\.description) }

    // MARK: The seven events

    public func connect(_ socket: Socket, auth: JSONValue?) -> ConnectDecision {
        let outcome = dispatch(SIO_EVENT_CONNECT, socket: socket, binding: .unbound) { event, scope in
            if let auth { event.auth_json = scope.arena.buf(auth.jsonText) }
        }
        if case .refused(let reason) = outcome { return .refuse(message: reason) }
        return .accept
    }

    public func message(_ socket: Socket, event: IncomingEvent) {
        // `args_json`, with where each argument lies in it: handlers that pass a piece of it back
        // (a relay forwarding what it got) are answered from the parsed value, not parsed again.
        var arguments: [UInt8] = [UInt8(ascii: "[")]
        var ranges: [Range<Int>] = []
        for (index, argument) in event.arguments.enumerated() {
            if index > 0 { arguments.append(UInt8(ascii: ",")) }
            let start = arguments.count
            argument.write(into: &arguments)
            ranges.append(start..<arguments.count)
        }
        arguments.append(UInt8(ascii: "]"))
        messageLog?.write(socket: socket, type: "message",
                          message: event.name == "message" && event.arguments.count == 1 ? event.arguments[0].jsonText
                              : JSONValue.array([.string(event.name)] + event.arguments).jsonText)
        dispatch(SIO_EVENT_MESSAGE, socket: socket, binding: .socketChannels) { sioEvent, scope in
            let arena = scope.arena
            let attachments = event.attachments.map { arena.buf($0.readableBytesView) }
            var message = sio_message()
            message.struct_size = MemoryLayout<sio_message>.size
            message.event = arena.buf(event.name)
            message.args_json = arena.buf(arguments)
            scope.remember(.array(event.arguments), at: message.args_json)
            if let base = message.args_json.ptr {
                for (range, argument) in zip(ranges, event.arguments) {
                    scope.remember(argument, at: sio_buf(ptr: base + range.lowerBound, len: range.count))
                }
            }
            message.attachments = arena.array(attachments)
            message.attachment_count = attachments.count
            message.ack_id = Int64(event.ackID ?? -1)
            sioEvent.message = arena.value(message)
        }
    }

    public func subscribe(_ socket: Socket, channel: String) -> SubscribeDecision {
        messageLog?.write(socket: socket, type: "subscribe", message: channel)
        let outcome = dispatch(SIO_EVENT_SUBSCRIBE, socket: socket, binding: .channel(channel)) { event, scope in
            event.channel = scope.arena.buf(channel)
        }
        if case .refused(let reason) = outcome { return .refuse(reason: reason) }
        return .accept
    }

    public func unsubscribe(_ socket: Socket, channel: String) {
        messageLog?.write(socket: socket, type: "unsubscribe", message: channel)
        dispatch(SIO_EVENT_UNSUBSCRIBE, socket: socket, binding: .channel(channel)) { event, scope in
            event.channel = scope.arena.buf(channel)
        }
    }

    public func error(_ socket: Socket, error: SocketError) {
        raiseError(socket, error.description)
    }

    public func disconnect(_ socket: Socket, reason: DisconnectReason) {
        dispatch(SIO_EVENT_DISCONNECT, socket: socket, binding: .socketChannels) { event, scope in
            event.reason = scope.arena.buf(reason.rawValue)
        }
    }

    public func finish(_ socket: Socket) {
        dispatch(SIO_EVENT_FINISH, socket: socket, binding: .socketChannels) { _, _ in }
        socket.userData = nil
    }

    // MARK: Dispatch

    enum Binding {
        /// Every handler without a pattern; patterned ones only if they match `channel`.
        case channel(String)
        /// Patterned handlers when any channel the socket is in matches.
        case socketChannels
        /// on_connect: patterns are refused at load, so every handler runs.
        case unbound
    }

    enum Outcome {
        case completed
        case refused(String)
    }

    @discardableResult
    private func dispatch(_ kind: sio_event_kind, socket: Socket, binding: Binding,
                          fill: (inout sio_event, EventScope) -> Void) -> Outcome {
        let thread = DispatchThread.current
        let generation: PluginSet
        let outermost = thread.pinned == nil
        if outermost {
            generation = current.withLockedValue { set in
                set.inFlight.wrappingIncrement(ordering: .relaxed)
                return set
            }
            thread.pinned = generation
        } else {
            generation = thread.pinned!
        }
        defer {
            if outermost {
                thread.pinned = nil
                generation.inFlight.wrappingDecrement(ordering: .releasing)
            }
        }
        let plugins = generation.plugins
        guard !plugins.isEmpty else { return .completed }
        let state = socket.hostState
        let scope = EventScope(socket: socket, host: self)
        guard let handle = thread.open(scope) else {
            logger.error("events nested too deeply; handlers not run", metadata: ["socket": "\(socket.id)"])
            return .completed
        }
        var isOpen = true
        defer { if isOpen { thread.close(scope) } }
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.kind = kind
        event.socket = handle
        event.request = state.request.pointer
        event.socket_id = scope.arena.buf(socket.id)
        event.nsp = scope.arena.buf(socket.namespace)
        fill(&event, scope)

        var failures: [String] = []
        var socketChannels: Set<String>?
        for plugin in plugins {
            for handler in plugin.handlers(for: kind) {
                if let pattern = handler.pattern {
                    switch binding {
                    case .channel(let channel):
                        guard pattern.matches(channel) else { continue }
                    case .socketChannels:
                        if socketChannels == nil {
                            socketChannels = kind == SIO_EVENT_FINISH ? socket.channelsAtDisconnect : socket.channels
                        }
                        guard pattern.matchesAny(socketChannels!) else { continue }
                    case .unbound:
                        break
                    }
                }
                scope.reason = nil
                if outermost { thread.began(plugin: plugin.summaryForWatchdog, kind: kind, socketID: socket.id) }
                let status = withUnsafePointer(to: &event) { handler.function($0, handler.userData) }
                if outermost { thread.ended() }
                switch status {
                case SIO_OK:
                    continue
                case SIO_REFUSE where kind == SIO_EVENT_CONNECT || kind == SIO_EVENT_SUBSCRIBE:
                    return .refused(scope.reason ?? "refused")
                default:
                    let why = scope.reason ?? "handler failed with status \(status)"
                    if kind == SIO_EVENT_CONNECT { return .refused(why) }
                    failures.append("\(plugin.name): \(why)")
                }
            }
        }
        thread.close(scope)
        isOpen = false
        for failure in failures {
            if kind == SIO_EVENT_ERROR {
                // An on_error handler that fails is logged, never raised again.
                logger.warning("on_error handler failed", metadata: ["socket": "\(socket.id)", "error": "\(failure)"])
            } else {
                raiseError(socket, failure)
            }
        }
        return .completed
    }

    private func raiseError(_ socket: Socket, _ message: String) {
        logger.info("socket error", metadata: ["socket": "\(socket.id)", "error": "\(message)"])
        dispatch(SIO_EVENT_ERROR, socket: socket, binding: .socketChannels) { event, scope in
            event.error = scope.arena.buf(message)
        }
    }

    // MARK: Sending

    func sendMessage(_ value: JSONValue, namespace: String, channels: [String]? = nil, excluding: String? = nil) {
        server.withLockedValue { $0 }?.emit(namespace: namespace, event: "message", [value], channels: channels, excluding: excluding)
    }

    public func outOfBandBroadcast(_ value: JSONValue, namespace: String, channel: String?) -> DeliveryResult {
        guard let server = server.withLockedValue({ $0 }) else { return .noSocket("server not running") }
        let reached = server.emit(namespace: namespace, event: "message", [value], channels: channel.map { [$0] })
        if reached == 0 {
            return .noSocket(channel.map { "no socket on channel \($0)" } ?? "no socket connected to \(namespace)")
        }
        return .delivered(reached)
    }

    public func outOfBandSend(_ value: JSONValue, namespace: String, socketID: String) -> DeliveryResult {
        guard let socket = server.withLockedValue({ $0 })?.socket(id: socketID, namespace: namespace) else {
            return .noSocket("no socket with id \(socketID)")
        }
        socket.emit("message", [value])
        return .delivered(1)
    }
}

/// What an out-of-band call achieved.
public enum DeliveryResult: Sendable, Equatable {
    case delivered(Int)
    /// The brief's distinct "no socket" error, with a one-line reason.
    case noSocket(String)

    var status: sio_status {
        if case .delivered = self { return SIO_OK }
        return SIO_ERR_NO_SOCKET
    }
}
