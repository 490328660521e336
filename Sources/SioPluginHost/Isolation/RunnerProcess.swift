#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CSioPlugin
import CSioSystem
import Foundation
import NIOCore

/// The plugin runner (`sio plugin-runner`): one process per isolated plugin, which maps the
/// plugin, calls its handlers for the events the server sends, and turns its host calls into
/// messages back. The server keeps every connection, subscription and context; a crash here
/// costs this process only.
///
/// Threads: a reader thread takes messages off the socket, hands answers to the callers
/// waiting for them and queues the rest; the main thread runs `init`, the handlers, the ack
/// callbacks and `retire`, one at a time. Plugin threads may make the "any thread" calls.
public enum RunnerProcess {
    /// Runs until the server goes (end of file on `fd`) or retires the plugin.
    public static func main(fd: Int32) -> Never {
        // The server's death ends the runner (SIGKILL on the server leaves no orphan): the
        // kernel's signal, then a check that the parent did not die before it was asked for.
        _ = sio_die_with_parent()
        if getppid() == 1 { exit(0) }
        signal(SIGPIPE, SIG_IGN)
        let state = RunnerState.shared
        state.fd = fd
        state.mainThread = pthread_self()
        let reader = Thread { state.readLoop() }
        reader.start()
        state.mainLoop()
    }
}

/// One main-thread event: what host functions reach through the `sio_socket *` they get.
final class RunnerScope {
    let serial: UInt
    let eventID: UInt64
    let kind: sio_event_kind
    let arena: CArena
    var reason: String?
    var deferrable: Bool
    var handlerTicket: sio_ticket = 0

    init(serial: UInt, eventID: UInt64, kind: sio_event_kind, deferrable: Bool, arena: CArena) {
        self.serial = serial
        self.eventID = eventID
        self.kind = kind
        self.deferrable = deferrable
        self.arena = arena
    }

    var handle: OpaquePointer? { OpaquePointer(bitPattern: serial) }
}

/// The runner's state: one plugin per process, so one instance.
///
/// `@unchecked Sendable`: what plugin threads reach (the socket, the answer table, the local
/// tickets) is under `lock`; the rest is the main thread's.
final class RunnerState: @unchecked Sendable {
    static let shared = RunnerState()

    var fd: Int32 = -1
    var mainThread = pthread_self()
    private let writeLock = NSLock()
    private let lock = NSCondition()
    private var inbox = CircularBuffer<Inbox>()
    private var answers: [UInt64: (status: Int64, value: [UInt8])] = [:]
    private var nextRequest: UInt64 = 1
    private var liveTickets: [sio_ticket: UInt64] = [:]
    private var nextTicket: sio_ticket = 1
    private(set) var revoked = false

    enum Inbox {
        case message(RunnerMessage)
        case complete(ticket: sio_ticket, decision: sio_status, reason: String?, ack: [UInt8])
    }

    // Main thread only.
    var handlers: [(kind: sio_event_kind, pattern: String?, function: sio_handler_fn, userData: UnsafeMutableRawPointer?)] = []
    var initialising = false
    var info: UnsafePointer<sio_plugin_info>?
    var scope: RunnerScope?
    private var serial: UInt = 0
    var callbacks: [UInt64: (function: sio_ack_fn, userData: UnsafeMutableRawPointer?)] = [:]
    var nextCallback: UInt64 = 1
    /// Events whose `done` waits for local tickets: event id → what the handlers decided.
    private var waiting: [UInt64: Waiting] = [:]

    /// Sockets with an event their handlers deferred here, and what came for them meanwhile:
    /// held, in order, as the server holds a socket behind an in-process deferral.
    private var heldBySocket: [String: [RunnerMessage]] = [:]
    private var waitingSockets: Set<String> = []
    private let requests = RequestCache()

    /// `--pending-timeout`, from the server: a message deferred here longer is released with
    /// a failure, as the server releases one deferred in process.
    private var pendingTimeout: Duration = .seconds(10)

    /// When the main thread began what it runs now (nanoseconds of the monotonic clock, plus
    /// one; 0 when idle), and that event's kind: the handler watchdog's view of it.
    private let busySince = ManagedAtomic<UInt64>(0)
    private let busyKind = ManagedAtomic<UInt32>(0)

    struct Waiting {
        var socketID: String
        var kind: sio_event_kind
        var deadline: ContinuousClock.Instant
        var tickets: Set<sio_ticket>
        var status: sio_status
        var reason: String
        var ack: [UInt8] = []
    }

    static var pluginHandle: OpaquePointer? { OpaquePointer(bitPattern: 1) }

    // MARK: The socket

    /// What the main thread sent during the current event: written in one go when the event
    /// ends, or before the thread waits for an answer (order is kept).
    private var batch: [UInt8] = []
    private var batching = false

    func write(_ message: RunnerMessage) {
        if batching, pthread_equal(pthread_self(), mainThread) != 0 {
            message.encode(into: &batch)
            return
        }
        writeBytes(message.encoded())
    }

    private func flush() {
        guard !batch.isEmpty else { return }
        let bytes = batch
        batch = []
        writeBytes(bytes)
    }

    private func writeBytes(_ bytes: [UInt8]) {
        writeLock.lock()
        defer { writeLock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                exit(0)  // the server is gone
            }
            offset += written
        }
    }

    func readLoop() {
        var buffer: [UInt8] = []
        var start = 0
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            // The server is gone (also when it was killed): end now, whatever the main thread
            // is doing — a hung handler included.
            if count <= 0 { _exit(0) }
            buffer += chunk[0..<count]
            // What one read brought goes to the main thread at once: woken per message, it
            // would take them one at a time and answer each in a write of its own.
            var messages: [RunnerMessage] = []
            do {
                while let message = try RunnerMessage.decode(from: &buffer, start: &start) { messages.append(message) }
            } catch {
                exit(2)
            }
            guard !messages.isEmpty else { continue }
            lock.lock()
            for message in messages {
                if message.kind == .reply {
                    answers[message.id] = (message.number, Array(message.field(0)))
                } else {
                    inbox.append(.message(message))
                }
            }
            lock.broadcast()
            lock.unlock()
        }
    }

    /// A call whose answer the plugin needs: waits for the server's reply.
    func ask(_ call: RunnerCall, event: UInt64, _ fields: [[UInt8]]) -> (status: Int64, value: [UInt8]) {
        lock.lock()
        let request = nextRequest
        nextRequest += 1
        lock.unlock()
        if pthread_equal(pthread_self(), mainThread) != 0 { flush() }
        writeBytes(RunnerMessage(kind: .call, id: event, number: Int64(request) << 32 | call.rawValue, fields: fields).encoded())
        lock.lock()
        defer { lock.unlock() }
        while answers[request] == nil { lock.wait() }
        return answers.removeValue(forKey: request)!
    }

    func post(_ call: RunnerCall, event: UInt64, _ fields: [[UInt8]]) {
        write(RunnerMessage(kind: .call, id: event, number: call.rawValue, fields: fields))
    }

    // MARK: The main thread

    func mainLoop() -> Never {
        while true {
            lock.lock()
            while inbox.isEmpty {
                guard let next = waiting.values.lazy.filter({ $0.kind == SIO_EVENT_MESSAGE }).map(\.deadline).min() else {
                    lock.wait()
                    continue
                }
                let left = next - .now
                guard left > .zero else { break }
                _ = lock.wait(until: Date(timeIntervalSinceNow: Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18))
            }
            guard !inbox.isEmpty else {
                lock.unlock()
                batching = true
                expire()
                batching = false
                flush()
                continue
            }
            let item = inbox.removeFirst()
            lock.unlock()
            batching = true
            switch item {
            case .message(let message):
                let timed = message.kind == .event || message.kind == .ackReply
                if timed { busy(message.kind == .event ? UInt32(truncatingIfNeeded: message.number) : SIO_EVENT_MESSAGE.rawValue) }
                handle(message)
                if timed { busySince.store(0, ordering: .releasing) }
            case .complete(let ticket, let decision, let reason, let ack):
                busy(SIO_EVENT_MESSAGE.rawValue)
                completeLocally(ticket, decision, reason, ack)
                busySince.store(0, ordering: .releasing)
            }
            batching = false
            // Under load, what several events sent goes out in one write.
            lock.lock()
            let more = !inbox.isEmpty
            lock.unlock()
            if !more || batch.count > 65_536 { flush() }
        }
    }

    // MARK: The handler watchdog

    private func busy(_ kind: UInt32) {
        busyKind.store(kind, ordering: .relaxed)
        busySince.store(DispatchTime.now().uptimeNanoseconds + 1, ordering: .releasing)
    }

    /// `--handler-timeout`, timed here where the handler runs: a thread that tells the server
    /// (which kills this process) when the main thread has run one event for too long.
    private func startWatchdog(timeout: UInt64) {
        let thread = Thread { [self] in
            let tick = UInt32(min(50_000, max(1_000, timeout / 4_000)))
            var reported: UInt64 = 0
            while true {
                usleep(tick)
                let since = busySince.load(ordering: .acquiring)
                guard since != 0, since != reported, DispatchTime.now().uptimeNanoseconds + 1 - since > timeout else { continue }
                reported = since
                writeBytes(RunnerMessage(kind: .hung, number: Int64(busyKind.load(ordering: .relaxed))).encoded())
            }
        }
        thread.start()
    }

    private func handle(_ message: RunnerMessage) {
        switch message.kind {
        case .load: load(message)
        case .start: start(message)
        case .event: dispatch(message)
        case .ackReply: callBack(message)
        case .retire: retire()
        case .cancel: cancel(message.id)
        case .forget:
            let socketID = message.text(0)
            if waitingSockets.contains(socketID) {
                heldBySocket[socketID, default: []].append(message)
            } else {
                requests.forget(socketID)
            }
        default: break
        }
    }

    private func refuse(_ reason: String) {
        write(RunnerMessage(kind: .refused, fields: [Array(reason.utf8)]))
    }

    private func load(_ message: RunnerMessage) {
        guard message.fieldCount == 4 || message.fieldCount == 5 else { return refuse("malformed load") }
        if let milliseconds = Int64(message.text(2)), milliseconds > 0 {
            pendingTimeout = .milliseconds(milliseconds)
        }
        if let milliseconds = UInt64(message.text(3)), milliseconds > 0 {
            startWatchdog(timeout: milliseconds * 1_000_000)
        }
        guard let image = dlopen(message.text(0), RTLD_NOW | RTLD_LOCAL) else {
            return refuse(PluginLoadError.notAPlugin(String(cString: dlerror())).description)
        }
        let info: UnsafePointer<sio_plugin_info>
        do {
            info = try PluginLoader.describe(entry: dlsym(image, SIO_PLUGIN_ENTRY_SYMBOL))
        } catch {
            return refuse(error.description)
        }
        self.info = info
        let previous = Array(message.field(1))
        let adoptEnd = MemoryLayout<sio_plugin_info>.offset(of: \.adopt)! + MemoryLayout<UnsafeRawPointer>.size
        let adopt = info.pointee.struct_size >= adoptEnd ? info.pointee.adopt : nil
        let preparing = message.text(4) == "prepare"
        // A reload's build: described now, while its predecessor serves; one with `adopt`
        // runs `init` now too, as in process, and takes the state at `start`.
        if preparing {
            if adopt != nil {
                guard initialise(info, state: []) else { return }
                write(RunnerMessage(kind: .prepared, number: 1, fields: described(info)))
            } else {
                write(RunnerMessage(kind: .prepared, fields: Array(described(info).prefix(3))))
            }
            return
        }
        guard initialise(info, state: adopt == nil ? previous : []) else { return }
        if let adopt { withBuf(previous) { adopt(Self.pluginHandle, $0) } }
        write(RunnerMessage(kind: .loaded, fields: described(info)))
    }

    /// A prepared build takes its predecessor's state.
    private func start(_ message: RunnerMessage) {
        guard let info else { return refuse("start before load") }
        let state = Array(message.field(0))
        let adoptEnd = MemoryLayout<sio_plugin_info>.offset(of: \.adopt)! + MemoryLayout<UnsafeRawPointer>.size
        if info.pointee.struct_size >= adoptEnd, let adopt = info.pointee.adopt {
            withBuf(state) { adopt(Self.pluginHandle, $0) }
        } else {
            guard initialise(info, state: state) else { return }
        }
        write(RunnerMessage(kind: .loaded, fields: described(info)))
    }

    /// Runs `init`; false (and refused) when it fails.
    private func initialise(_ info: UnsafePointer<sio_plugin_info>, state: [UInt8]) -> Bool {
        initialising = true
        let status = withBuf(state) { info.pointee.`init`!(RunnerHostAPI.table, Self.pluginHandle, $0) }
        initialising = false
        guard status == SIO_OK else {
            refuse(PluginLoadError.initFailed("init returned status \(status)").description)
            return false
        }
        return true
    }

    /// Name, version, ABI, then each handler as "kind" or "kind:pattern".
    private func described(_ info: UnsafePointer<sio_plugin_info>) -> [[UInt8]] {
        var fields: [[UInt8]] = [
            Array(String(cString: info.pointee.name).utf8),
            Array((info.pointee.version.map { String(cString: $0) } ?? "(unversioned)").utf8),
            Array("\(info.pointee.abi_major).\(info.pointee.abi_minor)".utf8),
        ]
        for handler in handlers {
            fields.append(Array(("\(handler.kind.rawValue)" + (handler.pattern.map { ":" + $0 } ?? "")).utf8))
        }
        return fields
    }

    private func retire() {
        var state: [UInt8] = []
        if let info {
            let retireEnd = MemoryLayout<sio_plugin_info>.offset(of: \.retire)! + MemoryLayout<UnsafeRawPointer>.size
            if info.pointee.struct_size >= retireEnd, let retire = info.pointee.retire {
                state = retire(Self.pluginHandle).bytes
            }
        }
        lock.lock()
        revoked = true
        // What retire completed (a plugin answering its queue before it goes) is sent first.
        let completed = inbox.compactMap { item -> (sio_ticket, sio_status, String?, [UInt8])? in
            if case .complete(let ticket, let decision, let reason, let ack) = item { return (ticket, decision, reason, ack) }
            return nil
        }
        lock.unlock()
        for (ticket, decision, reason, ack) in completed { completeLocally(ticket, decision, reason, ack) }
        flush()
        write(RunnerMessage(kind: .retired, fields: [state]))
        flush()
        exit(0)
    }

    /// The events' buffers: one event at a time runs here, so one arena serves them all, reset
    /// when the next opens (what a handler was given lives until it returns, as the ABI says).
    private let eventArena = CArena()

    private func open(eventID: UInt64, kind: sio_event_kind, deferrable: Bool) -> RunnerScope {
        serial += 1
        let arena: CArena
        if self.scope == nil {
            eventArena.reset()
            arena = eventArena
        } else {
            arena = CArena()
        }
        let scope = RunnerScope(serial: serial, eventID: eventID, kind: kind, deferrable: deferrable, arena: arena)
        self.scope = scope
        return scope
    }

    private func dispatch(_ message: RunnerMessage) {
        let socketID = message.text(1)
        if !waitingSockets.isEmpty, waitingSockets.contains(socketID) {
            write(RunnerMessage(kind: .parked, id: message.id))
            heldBySocket[socketID, default: []].append(message)
            return
        }
        let kind = sio_event_kind(rawValue: UInt32(truncatingIfNeeded: message.number))
        let deferrable = kind == SIO_EVENT_CONNECT || kind == SIO_EVENT_SUBSCRIBE || kind == SIO_EVENT_MESSAGE
        let scope = open(eventID: message.id, kind: kind, deferrable: deferrable)
        defer { self.scope = nil }
        guard var decoded = EventFields.decode(message, kind: kind, in: scope.arena, requests: requests) else {
            write(RunnerMessage(kind: .done, id: message.id, number: Int64(SIO_FAIL), fields: [Array("malformed event".utf8), []]))
            return
        }
        decoded.event.socket = scope.handle
        var status = SIO_OK
        var reasons: [String] = []
        var tickets: Set<sio_ticket> = []
        for index in decoded.handlers where handlers.indices.contains(index) {
            let handler = handlers[index]
            scope.reason = nil
            scope.handlerTicket = 0
            let result = withUnsafePointer(to: &decoded.event) { handler.function($0, handler.userData) }
            if scope.handlerTicket != 0 {
                if result == SIO_PENDING {
                    tickets.insert(scope.handlerTicket)
                } else {
                    withdraw(scope.handlerTicket)
                }
            }
            switch HandlerVerdict.of(result, kind: kind, reason: scope.reason, deferred: scope.handlerTicket != 0) {
            case .next:
                continue
            case .refuse(let why, _):
                for ticket in tickets { withdraw(ticket) }
                finish(message.id, status: SIO_REFUSE, reason: why)
                return
            case .fail(let why):
                status = SIO_FAIL
                reasons.append(why)
            }
        }
        if tickets.isEmpty {
            finish(message.id, status: status, reason: reasons.joined(separator: "; "))
        } else {
            write(RunnerMessage(kind: .parked, id: message.id))
            waiting[message.id] = Waiting(socketID: socketID, kind: kind, deadline: .now + pendingTimeout, tickets: tickets,
                                          status: status, reason: reasons.joined(separator: "; "))
            waitingSockets.insert(socketID)
        }
    }

    private func finish(_ eventID: UInt64, status: sio_status, reason: String, ack: [UInt8] = []) {
        write(RunnerMessage(kind: .done, id: eventID, number: Int64(status), fields: [Array(reason.utf8), ack]))
    }

    private func callBack(_ message: RunnerMessage) {
        guard let callback = callbacks.removeValue(forKey: message.id), message.fieldCount >= 4 else { return }
        let eventID = UInt64(message.text(3)) ?? 0
        let scope = open(eventID: eventID, kind: SIO_EVENT_MESSAGE, deferrable: false)
        defer {
            self.scope = nil
            if eventID != 0 { finish(eventID, status: SIO_OK, reason: "") }
        }
        var reply = sio_ack_reply()
        reply.struct_size = MemoryLayout<sio_ack_reply>.size
        reply.status = sio_status(truncatingIfNeeded: message.number)
        reply.socket = reply.status == SIO_ERR_NO_SOCKET ? nil : scope.handle
        reply.socket_id = scope.arena.buf(message.field(0))
        reply.nsp = scope.arena.buf(message.field(1))
        reply.args_json = scope.arena.buf(message.field(2))
        let attachments = message.fieldCount > 4 ? (RunnerMessage.unpack(Array(message.field(4))) ?? []).map { scope.arena.buf($0) } : []
        reply.attachments = scope.arena.array(attachments)
        reply.attachment_count = attachments.count
        withUnsafePointer(to: &reply) { callback.function($0, callback.userData) }
    }

    // MARK: Deferral, inside the runner

    func takeTicket(for eventID: UInt64) -> sio_ticket {
        lock.lock()
        defer { lock.unlock() }
        let ticket = nextTicket
        nextTicket += 1
        liveTickets[ticket] = eventID
        return ticket
    }

    /// The server finished the event's socket: its tickets complete with SIO_ERR_STATE now.
    private func cancel(_ eventID: UInt64) {
        guard let entry = waiting.removeValue(forKey: eventID) else { return }
        for ticket in entry.tickets { withdraw(ticket) }
        if entry.kind == SIO_EVENT_MESSAGE { finish(eventID, status: SIO_OK, reason: "") }
        release(entry.socketID)
    }

    /// Messages deferred past `--pending-timeout`: released with a failure (on_error).
    private func expire() {
        let now = ContinuousClock.now
        for (eventID, entry) in waiting where entry.kind == SIO_EVENT_MESSAGE && entry.deadline <= now {
            waiting[eventID] = nil
            for ticket in entry.tickets { withdraw(ticket) }
            let milliseconds = pendingTimeout.components.seconds * 1000 + pendingTimeout.components.attoseconds / 1_000_000_000_000_000
            finish(eventID, status: SIO_FAIL, reason: "not completed within \(milliseconds) ms")
            release(entry.socketID)
        }
    }

    /// The socket's deferred event is done: what came for it meanwhile is handled now, until
    /// another of its events waits.
    private func release(_ socketID: String) {
        waitingSockets.remove(socketID)
        while !waitingSockets.contains(socketID), var queue = heldBySocket[socketID], !queue.isEmpty {
            let next = queue.removeFirst()
            heldBySocket[socketID] = queue.isEmpty ? nil : queue
            if next.kind == .forget {
                requests.forget(socketID)
            } else {
                dispatch(next)
            }
        }
    }

    private func withdraw(_ ticket: sio_ticket) {
        lock.lock()
        liveTickets[ticket] = nil
        lock.unlock()
    }

    /// `complete` from any thread: the ticket is checked now, the event finished on the main
    /// thread.
    func complete(_ ticket: sio_ticket, decision: sio_status, reason: String?, ack: [UInt8]) -> sio_status {
        lock.lock()
        defer { lock.unlock() }
        guard !revoked, liveTickets.removeValue(forKey: ticket) != nil else { return SIO_ERR_STATE }
        inbox.append(.complete(ticket: ticket, decision: decision, reason: reason, ack: ack))
        lock.broadcast()
        return SIO_OK
    }

    private func completeLocally(_ ticket: sio_ticket, _ decision: sio_status, _ reason: String?, _ ack: [UInt8]) {
        guard let entry = waiting.first(where: { $0.value.tickets.contains(ticket) }) else { return }
        var state = entry.value
        state.tickets.remove(ticket)
        switch decision {
        case SIO_OK: break
        // Reasons left empty get the server's words ("refused", "handler failed", ...).
        case SIO_REFUSE where state.status != SIO_FAIL:
            state.status = SIO_REFUSE
            if state.reason.isEmpty { state.reason = reason ?? "" }
        default:
            state.status = SIO_FAIL
            if let reason { state.reason += (state.reason.isEmpty ? "" : "; ") + reason }
        }
        if state.ack.isEmpty { state.ack = ack }
        if state.tickets.isEmpty {
            waiting[entry.key] = nil
            finish(entry.key, status: state.status, reason: state.reason, ack: state.ack)
            release(state.socketID)
        } else {
            waiting[entry.key] = state
        }
    }

    /// The scope behind a socket handle, on the main thread during its event only.
    func scope(for handle: OpaquePointer?) -> RunnerScope? {
        guard pthread_equal(pthread_self(), mainThread) != 0, let scope, scope.handle == handle, handle != nil else { return nil }
        return scope
    }

    var pluginIsLive: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !revoked
    }
}

private func withBuf<R>(_ bytes: [UInt8], _ body: (sio_buf) -> R) -> R {
    bytes.withUnsafeBufferPointer { body(sio_buf(ptr: $0.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: $0.count)) }
}
