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
public final class PluginHost: SocketIOApplication, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Where `*.so` plugins are loaded from; nil loads none.
        public var directory: String?
        /// `SOCKETIO_MESSAGE_LOG_FORMAT`; nil turns the message log off.
        public var messageLogFormat: String? = MessageLog.defaultFormat

        public init(directory: String? = nil) {
            self.directory = directory
        }
    }

    let logger: Logger
    private let configuration: Configuration
    private let messageLog: MessageLog?
    private let current = NIOLockedValueBox(PluginSet([]))
    private let server = NIOLockedValueBox<SocketIOServer?>(nil)
    private let loader: PluginLoader
    /// Reloads run one at a time, whatever triggered them.
    private let reloadLock = NIOLock()

    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.messageLog = configuration.messageLogFormat.map { MessageLog(format: $0) }
        self.loader = try PluginLoader()
    }

    /// The server out-of-band calls go through; set once, before clients connect.
    public func attach(_ server: SocketIOServer) {
        self.server.withLockedValue { $0 = server }
    }

    var plugins: [LoadedPlugin] { current.withLockedValue { $0.plugins } }

    /// Loads every `*.so` of the plugins directory, in file-name order.
    @discardableResult
    public func loadAll() -> [PluginLoadReport] { reload() }

    /// Brings the loaded set in line with the plugins directory: new files load, changed files
    /// replace their plugin, removed files retire theirs, unchanged ones stay as they are.
    ///
    /// Every new version is loaded and initialised before anything changes; then the set is
    /// swapped at once. Events that already started finish on the versions they started with;
    /// retired C images are unmapped once no event runs on them (Swift images stay mapped).
    /// A version that fails to load is refused and its predecessor keeps serving.
    @discardableResult
    public func reload() -> [PluginLoadReport] {
        reloadLock.withLock { reloadLocked() }
    }

    private func reloadLocked() -> [PluginLoadReport] {
        guard let directory = configuration.directory else { return [] }
        do {
            try PluginFileCheck.check(directory, what: "plugins directory")
        } catch {
            logger.error("plugin refused: \(directory): \(error)")
            return [PluginLoadReport(file: directory, outcome: .refused(error.description))]
        }
        let previous = current.withLockedValue { $0 }
        var next: [LoadedPlugin] = []
        var retired: [LoadedPlugin] = []
        var reports: [PluginLoadReport] = []
        let files = PluginFile.list(directory)
        for file in files {
            let existing = previous.plugins.first(where: { $0.file == file })
            guard let data = FileManager.default.contents(atPath: file) else {
                if let existing { next.append(existing) }
                reports.append(PluginLoadReport(file: file, outcome: .refused("cannot read the file")))
                continue
            }
            if let existing, existing.contentHash == PluginFile.hash(data) {
                next.append(existing)
                reports.append(PluginLoadReport(file: file, outcome: .unchanged(existing.description)))
                continue
            }
            let state = existing?.retire() ?? []
            do {
                let plugin = try loader.load(file: file, data: data, host: self, previousState: state)
                next.append(plugin)
                if let existing { retired.append(existing) }
                logger.info("plugin \(existing == nil ? "loaded" : "reloaded")",
                            metadata: ["plugin": "\(plugin.summary)", "handlers": "\(plugin.handlers.count)"])
                reports.append(PluginLoadReport(file: file, outcome: existing == nil ? .loaded(plugin.description) : .reloaded(plugin.description)))
            } catch {
                if let existing { next.append(existing) }
                logger.error("plugin refused: \(file): \(error)")
                reports.append(PluginLoadReport(file: file, outcome: .refused(error.description)))
            }
        }
        for plugin in previous.plugins where !files.contains(plugin.file) {
            _ = plugin.retire()
            retired.append(plugin)
            logger.info("plugin removed", metadata: ["plugin": "\(plugin.summary)"])
            reports.append(PluginLoadReport(file: plugin.file, outcome: .removed))
        }
        current.withLockedValue { $0 = PluginSet(next) }
        if !retired.isEmpty { unload(retired, after: previous) }
        return reports
    }

    /// Unmaps retired C images once the generation they served has no event in flight.
    private func unload(_ retired: [LoadedPlugin], after generation: PluginSet) {
        let logger = self.logger
        Thread.detachNewThread {
            let started = ContinuousClock.now
            while generation.inFlight.load(ordering: .acquiring) > 0 {
                if ContinuousClock.now - started > .seconds(30) {
                    logger.warning("an event has been running on a retired plugin for 30 s; its image stays mapped")
                    return
                }
                usleep(200)
            }
            for plugin in retired { plugin.image.close() }
        }
    }

    public var descriptions: [PluginDescription] { plugins.map(\.description) }

    // MARK: The seven events

    public func connect(_ socket: SocketIOSocket, auth: JSONValue?) -> ConnectDecision {
        let outcome = dispatch(SIO_EVENT_CONNECT, socket: socket, binding: .unbound) { event, scope in
            if let auth { event.auth_json = scope.arena.buf(auth.jsonText) }
        }
        if case .refused(let reason) = outcome { return .refuse(message: reason) }
        return .accept
    }

    public func message(_ socket: SocketIOSocket, event: IncomingEvent) {
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

    public func subscribe(_ socket: SocketIOSocket, channel: String) -> SubscribeDecision {
        messageLog?.write(socket: socket, type: "subscribe", message: channel)
        let outcome = dispatch(SIO_EVENT_SUBSCRIBE, socket: socket, binding: .channel(channel)) { event, scope in
            event.channel = scope.arena.buf(channel)
        }
        if case .refused(let reason) = outcome { return .refuse(reason: reason) }
        return .accept
    }

    public func unsubscribe(_ socket: SocketIOSocket, channel: String) {
        messageLog?.write(socket: socket, type: "unsubscribe", message: channel)
        dispatch(SIO_EVENT_UNSUBSCRIBE, socket: socket, binding: .channel(channel)) { event, scope in
            event.channel = scope.arena.buf(channel)
        }
    }

    public func error(_ socket: SocketIOSocket, error: SocketIOError) {
        raiseError(socket, error.description)
    }

    public func disconnect(_ socket: SocketIOSocket, reason: DisconnectReason) {
        dispatch(SIO_EVENT_DISCONNECT, socket: socket, binding: .socketChannels) { event, scope in
            event.reason = scope.arena.buf(reason.rawValue)
        }
    }

    public func finish(_ socket: SocketIOSocket) {
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
    private func dispatch(_ kind: sio_event_kind, socket: SocketIOSocket, binding: Binding,
                          fill: (inout sio_event, EventScope) -> Void) -> Outcome {
        let generation = current.withLockedValue { set in
            set.inFlight.wrappingIncrement(ordering: .relaxed)
            return set
        }
        defer { generation.inFlight.wrappingDecrement(ordering: .releasing) }
        let plugins = generation.plugins
        guard !plugins.isEmpty else { return .completed }
        let state = socket.hostState
        let scope = EventScope(socket: socket, host: self)
        defer { scope.close() }
        var event = sio_event()
        event.struct_size = MemoryLayout<sio_event>.size
        event.kind = kind
        event.socket = scope.handle
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
                let status = withUnsafePointer(to: &event) { handler.function($0, handler.userData) }
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
        scope.close()
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

    private func raiseError(_ socket: SocketIOSocket, _ message: String) {
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
