#if canImport(Glibc)
import Glibc
#endif
import CoreMetrics
import CSioPlugin
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SocketIOCodec
import SocketIOServer

/// A plugin in isolated mode, as the server sees it: the runner process that hosts it, the
/// events sent to it and not yet done, and its restarts.
///
/// The process is the plugin's: a segfault, an abort, `exit()` or a handler that never returns
/// ends it (the last by `--handler-timeout`), and the server restarts it with its last handed-over
/// state while every connection stays. Events for a plugin that is down are not delivered to it.
///
/// `@unchecked Sendable`: what changes is under `lock`; the threads are the dispatching event
/// loops (`send`), one reader and one writer per process.
final class PluginRunner: @unchecked Sendable {
    struct Handler {
        let kind: sio_event_kind
        let pattern: ChannelPattern?
    }

    /// The handler metrics of in-process plugins, per event kind: for a runner the duration is
    /// from sending the event to its answer (queueing in the runner included), and an error is
    /// an answer that failed.
    private var timers: [CoreMetrics.Timer] = []
    private var errorCounters: [Counter] = []

    /// An event sent to the runner. A class: it is passed from the loop to the table, the
    /// reader and back to the loop, and a reference is one retain where this struct's copies
    /// were several (a few per cent of an isolated event).
    ///
    /// `@unchecked Sendable`: immutable; its state is touched on the socket's loop only.
    final class InFlight: @unchecked Sendable {
        let socket: Socket
        let state: SocketState?
        let kind: sio_event_kind
        let ticket: sio_ticket
        /// A message's ack id, answered when the runner's `done` brings arguments.
        let ackID: Int?
        let started: ContinuousClock.Instant
        /// A client's message, counted in its socket's `runnerBacklog` until settled.
        let counted: Bool

        init(socket: Socket, state: SocketState?, kind: sio_event_kind, ticket: sio_ticket, ackID: Int? = nil,
             started: ContinuousClock.Instant, counted: Bool = false) {
            self.socket = socket
            self.state = state
            self.kind = kind
            self.ticket = ticket
            self.ackID = ackID
            self.started = started
            self.counted = counted
        }
    }

    let file: String
    private(set) var data: [UInt8]
    private(set) var contentHash: UInt64
    unowned let host: PluginHost
    private(set) var name = ""
    private(set) var version = ""
    private(set) var abi = ""
    private(set) var handlers: [Handler] = []
    var summary: String { "\(name) \(version)" }

    private let lock = NIOLock()
    private var process: Process?
    private var inFlight = InFlightTable<InFlight>()
    private var nextEventID: UInt64 = 1
    private var crashes: [ContinuousClock.Instant] = []
    /// What the plugin handed over last (a reload's retire): a restart begins from it.
    private var handedOver: [UInt8] = []
    private(set) var status = Status.starting
    /// Events that came while a reload switched versions: sent to the new one, in order.
    private var held: [Held] = []

    enum Status: Equatable {
        case starting, serving, switching, restarting, failed, retired
    }

    struct Held {
        var fields: [[UInt8]]
        let kind: sio_event_kind
        let flight: InFlight
        /// The channels its handlers' patterns are matched against; nil: every handler.
        let channels: Set<String>?
    }

    /// One runner process: its pid, socket and outbox.
    final class Process: @unchecked Sendable {
        let pid: pid_t
        let fd: Int32
        /// Guards what follows; two kinds of thread wait on it (the writer for bytes, a loader
        /// or reload for `handshake`), so it is always broadcast: a signal could wake the
        /// wrong one and leave a reload's `retire` unwritten.
        let outbox = NSCondition()
        /// Encoded messages not yet written: the writer takes them all in one write.
        var pending: [UInt8] = []
        var closed = false
        /// The answer to `load` or `retire`, for the thread that waits for it.
        var handshake: RunnerMessage?
        /// Asked to retire: its end is not a crash.
        var retiring = false
        /// Killed for `--handler-timeout`: said so in the log.
        var hung = false
        /// Sockets whose request this process has (`RequestCache`); under the runner's `lock`.
        var requestsSent = Set<String>()

        init(pid: pid_t, fd: Int32) {
            self.pid = pid
            self.fd = fd
        }

        /// Loops that queued messages this tick and wake the writer at its end.
        private var wakingLoops: [ObjectIdentifier] = []

        /// From an event loop, the writer is woken once at the end of the loop's tick: the
        /// events one read of a client brought go out in one write, and the runner hands back
        /// their effects together, so a broadcast's flush carries all of them, as in process.
        /// Waking the writer per event let it (and the runner, and the reader) preempt the loop
        /// on a shared core after every event, which halved the messages per flush.
        /// `loop`: the sending socket's, when this runs on it.
        func enqueue(_ message: RunnerMessage, loop: EventLoop? = nil) {
            enqueue(loop: loop) { message.encode(into: &$0) }
        }

        func enqueue(loop: EventLoop?, _ encode: (inout [UInt8]) -> Void) {
            outbox.lock()
            defer { outbox.unlock() }
            guard !closed else { return }
            encode(&pending)
            guard let loop, loop.inEventLoop else {
                outbox.broadcast()
                return
            }
            let key = ObjectIdentifier(loop)
            guard !wakingLoops.contains(key) else { return }
            wakingLoops.append(key)
            loop.execute { [self] in
                outbox.lock()
                wakingLoops.removeAll { $0 == key }
                writeFromLoop()
                outbox.unlock()
            }
        }

        /// Whether the writer thread or a loop is writing now: one at a time keeps the order.
        var writing = false

        /// At the end of a loop's tick, under `outbox`: what fits in the socket's buffer is
        /// written from here, without waking the writer thread (a context switch each tick on
        /// a shared core); what does not fit, the writer thread writes.
        private func writeFromLoop() {
            guard !writing, !closed, !pending.isEmpty else {
                outbox.broadcast()
                return
            }
            writing = true
            var bytes: [UInt8] = []
            swap(&bytes, &pending)
            outbox.unlock()
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                if written < 0 {
                    if errno == EINTR { continue }
                    break  // full (or gone: the writer thread and the reader see to that)
                }
                offset += written
            }
            outbox.lock()
            writing = false
            if offset < bytes.count { pending = Array(bytes[offset...]) + pending }
            // What did not fit, and what others queued meanwhile (a reload's `retire`, which
            // found the writer thread waiting for this write to end), is the writer's now.
            if !pending.isEmpty { outbox.broadcast() }
        }
    }

    init(file: String, data: [UInt8], host: PluginHost) {
        self.file = file
        self.data = data
        self.contentHash = PluginFile.hash(data)
        self.host = host
    }

    // MARK: Starting

    /// Starts a process and loads the plugin in it with `state`; throws the refusal.
    /// `switching`: a reload's, which sends the held events itself once it is done.
    func start(state: [UInt8], switching: Bool = false) throws(PluginLoadError) {
        let (process, answer) = try launch(data, fields: [state], serving: true)
        try expectLoaded(process, answer)
        if !switching { releaseHeld() }
    }

    /// A process loading `bytes`, and its answer (nil: it ended or did not answer). `fields`:
    /// the state, then the prepare flag if any. `serving`: the process becomes the runner's at
    /// once (a start), rather than once its build is known to load (a reload).
    private func launch(_ bytes: [UInt8], fields: [[UInt8]], serving: Bool) throws(PluginLoadError) -> (Process, RunnerMessage?) {
        do {
            try ELFCheck.validate(bytes)
        } catch {
            throw .notAPlugin(error.description)
        }
        guard let command = host.configuration.runner else { throw .notAPlugin("no plugin runner command") }
        let copy = "\(host.loader.privateDirectory)/runner-\(UInt64.random(in: 0...UInt64.max))-\((file as NSString).lastPathComponent)"
        guard FileManager.default.createFile(atPath: copy, contents: Data(bytes), attributes: [.posixPermissions: 0o500]) else {
            throw .notAPlugin("cannot write the private copy \(copy)")
        }
        defer { unlink(copy) }
        let process = try spawn(command)
        if serving { lock.withLock { self.process = process } }
        Thread { self.writeLoop(process) }.start()
        Thread { self.readLoop(process) }.start()
        let timeouts = [host.configuration.pendingTimeout, host.configuration.handlerTimeout]
            .map { Array(String($0.nanoseconds / 1_000_000).utf8) }
        process.enqueue(RunnerMessage(kind: .load, fields: [Array(copy.utf8), fields[0]] + timeouts + fields.dropFirst()))
        return (process, waitForHandshake(process, timeout: .seconds(10)))
    }

    /// `answer` to a `load` or a `start`: the build serves from here (its name, version and
    /// handlers taken), or the process is killed and the refusal thrown.
    private func expectLoaded(_ process: Process, _ answer: RunnerMessage?) throws(PluginLoadError) {
        let described = try describe(process, answer, expecting: .loaded)
        let dimensions = LoadedPlugin.eventNames.map { [("plugin", described.name), ("event", $0)] }
        let newTimers = dimensions.map { CoreMetrics.Timer(label: "sio_handler_duration_seconds", dimensions: $0) }
        let newCounters = dimensions.map { Counter(label: "sio_handler_errors_total", dimensions: $0) }
        lock.withLock {
            timers = newTimers
            errorCounters = newCounters
            name = described.name
            version = described.version
            abi = described.abi
            handlers = described.handlers
            status = .serving
        }
    }

    private struct Described {
        var name = "", version = "", abi = ""
        var handlers: [Handler] = []
    }

    /// What a `loaded` or `prepared` answer says, checked as the in-process loader checks it.
    private func describe(_ process: Process, _ answer: RunnerMessage?, expecting kind: RunnerMessage.Kind) throws(PluginLoadError) -> Described {
        guard let answer else {
            kill(process.pid, SIGKILL)
            throw .initFailed("the plugin runner ended or did not answer while loading the plugin")
        }
        guard answer.kind == kind, answer.fieldCount >= 3 else {
            kill(process.pid, SIGKILL)
            throw .fromRunner(answer.fieldCount > 0 ? answer.text(0) : "refused by the plugin runner")
        }
        var described = Described(name: answer.text(0), version: answer.text(1), abi: answer.text(2))
        var errors: [String] = []
        for index in 3..<answer.fieldCount {
            let text = answer.text(index)
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let raw = UInt32(parts[0]), raw < UInt32(SIO_EVENT_KIND_COUNT) else {
                errors.append("unknown event kind \(parts[0])")
                continue
            }
            let kind = sio_event_kind(rawValue: raw)
            var pattern: ChannelPattern?
            if parts.count == 2 {
                let source = String(parts[1])
                guard kind != SIO_EVENT_CONNECT else {
                    errors.append("on_connect cannot be bound to a channel (pattern \(source.debugDescription))")
                    continue
                }
                do {
                    pattern = try ChannelPattern(source)
                } catch {
                    errors.append("channel pattern \(source.debugDescription) does not compile: \(error)")
                    continue
                }
            }
            described.handlers.append(Handler(kind: kind, pattern: pattern))
        }
        guard errors.isEmpty else {
            kill(process.pid, SIGKILL)
            throw .registration(errors)
        }
        return described
    }

    private func spawn(_ command: [String]) throws(PluginLoadError) -> Process {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw .notAPlugin("socketpair failed: errno \(errno)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[1], 3)
        let arguments = command + ["--fd", "3"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let environment = ChildEnvironment.make()
        defer { for pointer in environment { free(pointer) } }
        let (spawned, pid) = withUnsafePointer(to: &actions) { actions in
            let argv = argv, environment = environment
            return RunnerSpawner.shared.run { () -> (Int32, pid_t) in
                var pid: pid_t = 0
                var argv = argv, environment = environment
                let spawned = posix_spawn(&pid, command[0], actions, nil, &argv, &environment)
                return (spawned, pid)
            }
        }
        close(ends[1])
        guard spawned == 0 else {
            close(ends[0])
            throw .notAPlugin("cannot start the plugin runner \(command[0]): errno \(spawned)")
        }
        return Process(pid: pid, fd: ends[0])
    }

    private func waitForHandshake(_ process: Process, timeout: Duration) -> RunnerMessage? {
        let deadline = Date(timeIntervalSinceNow: Double(timeout.components.seconds))
        process.outbox.lock()
        defer { process.outbox.unlock() }
        while process.handshake == nil, !process.closed {
            if !process.outbox.wait(until: deadline) { break }
        }
        defer { process.handshake = nil }
        return process.handshake
    }

    // MARK: The process's threads

    private func writeLoop(_ process: Process) {
        while true {
            process.outbox.lock()
            while process.pending.isEmpty || process.writing, !process.closed { process.outbox.wait() }
            if process.closed {
                process.outbox.unlock()
                return
            }
            var bytes: [UInt8] = []
            swap(&bytes, &process.pending)
            process.writing = true
            process.outbox.unlock()
            defer {
                process.outbox.lock()
                process.writing = false
                process.outbox.unlock()
            }
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { write(process.fd, $0.baseAddress! + offset, bytes.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // the reader sees the end and handles it
                }
                offset += written
            }
        }
    }

    private func readLoop(_ process: Process) {
        var buffer: [UInt8] = []
        var start = 0
        var chunk = [UInt8](repeating: 0, count: 65_536)
        reading: while true {
            let count = chunk.withUnsafeMutableBytes { read(process.fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            buffer += chunk[0..<count]
            var work = LoopWork(runner: self)
            do {
                while let message = try RunnerMessage.decode(from: &buffer, start: &start) {
                    receive(message, from: process, into: &work)
                }
                work.run()
            } catch {
                work.run()
                host.logger.error("plugin runner sent a malformed message; stopping it", metadata: ["plugin": "\(summary)", "error": "\(error)"])
                kill(process.pid, SIGKILL)
                break reading
            }
        }
        ended(process)
    }

    /// What one read asks of each event loop, run there as one task, in the order it came.
    struct LoopWork {
        /// A host call, the common item, as data: a closure each cost an allocation per event.
        struct Call {
            let call: RunnerCall
            let message: RunnerMessage
            let flight: InFlight
            let request: UInt64
            let process: Process
        }

        enum Item {
            case call(Call)
            case job(() -> Void)
        }

        private var jobs: [ObjectIdentifier: (loop: EventLoop, items: [Item], settled: [InFlight])] = [:]
        private var order: [ObjectIdentifier] = []
        let runner: PluginRunner

        init(runner: PluginRunner) {
            self.runner = runner
        }

        private mutating func entry(_ loop: EventLoop) -> ObjectIdentifier {
            let key = ObjectIdentifier(loop)
            if jobs[key] == nil {
                jobs[key] = (loop, [], [])
                order.append(key)
            }
            return key
        }

        mutating func add(_ loop: EventLoop, _ job: @escaping () -> Void) {
            jobs[entry(loop)]!.items.append(.job(job))
        }

        mutating func add(_ call: Call) {
            jobs[entry(call.flight.socket.eventLoop)]!.items.append(.call(call))
        }

        /// A counted message answered: settled after the read's other work for its loop.
        mutating func settle(_ flight: InFlight) {
            jobs[entry(flight.socket.eventLoop)]!.settled.append(flight)
        }

        func run() {
            for key in order {
                let (loop, list, settled) = jobs[key]!
                nonisolated(unsafe) let items = list
                let runner = runner
                loop.execute {
                    let host = runner.host
                    for item in items {
                        switch item {
                        case .job(let job):
                            job()
                        case .call(let call):
                            let (status, value) = host.perform(call.call, call.message, flight: call.flight, runner: runner)
                            if call.request != 0 {
                                call.process.enqueue(RunnerMessage(kind: .reply, id: call.request, number: Int64(status), fields: [value]),
                                                     loop: loop)
                            }
                        }
                    }
                    for flight in settled { host.settle(flight) }
                }
            }
        }
    }

    private func receive(_ message: RunnerMessage, from process: Process, into work: inout LoopWork) {
        switch message.kind {
        case .loaded, .prepared, .refused, .retired:
            process.outbox.lock()
            process.handshake = message
            process.outbox.broadcast()
            process.outbox.unlock()
        case .done:
            guard let found = lock.withLock({ () -> (InFlight, CoreMetrics.Timer?, Counter?)? in
                guard let flight = inFlight.remove(message.id) else { return nil }
                let kind = Int(flight.kind.rawValue)
                return (flight, timers.indices.contains(kind) ? timers[kind] : nil, errorCounters.indices.contains(kind) ? errorCounters[kind] : nil)
            }) else { return }
            let (flight, timer, errors) = found
            timer?.recordNanoseconds((ContinuousClock.now - flight.started).nanoseconds)
            if message.number != Int64(SIO_OK) { errors?.increment() }
            if flight.counted { work.settle(flight) }
            // A message handled without an ack or an error, the common case, needs nothing
            // more on the socket's loop.
            let ack = Array(message.field(1))
            guard flight.ticket != 0 || message.number != Int64(SIO_OK) || !ack.isEmpty else { return }
            work.add(flight.socket.eventLoop) { [self] in
                host.isolatedEventDone(flight, runner: self, status: sio_status(truncatingIfNeeded: message.number),
                                       reason: message.text(0),
                                       ack: ack)
            }
        case .call:
            let call = RunnerCall(rawValue: message.number & 0xffff_ffff)
            let request = UInt64(message.number >> 32)
            guard let call else {
                if request != 0 { process.enqueue(RunnerMessage(kind: .reply, id: request, number: Int64(SIO_ERR_INVALID))) }
                return
            }
            if message.id == 0 {
                let (status, value) = host.performOutOfBand(call, message, runner: self)
                if request != 0 { process.enqueue(RunnerMessage(kind: .reply, id: request, number: Int64(status), fields: [value])) }
                return
            }
            guard let flight = lock.withLock({ inFlight[message.id] }) else {
                if request != 0 { process.enqueue(RunnerMessage(kind: .reply, id: request, number: Int64(SIO_ERR_STATE))) }
                return
            }
            work.add(LoopWork.Call(call: call, message: message, flight: flight, request: request, process: process))
        case .parked:
            lock.withLock { inFlight.park(message.id) }
        case .hung:
            let kind = Int(message.number)
            guard LoadedPlugin.eventNames.indices.contains(kind), killHung(process) else { return }
            host.logger.error("plugin handler ran past --handler-timeout; its runner is killed and restarted", metadata: [
                "plugin": "\(summary)", "event": "\(LoadedPlugin.eventNames[kind])",
                "timeout_ms": "\(host.configuration.handlerTimeout.nanoseconds / 1_000_000)"])
        default:
            break
        }
    }

    /// The process is gone: a crash unless it was retired.
    private func ended(_ process: Process) {
        process.outbox.lock()
        process.closed = true
        process.outbox.broadcast()
        process.outbox.unlock()
        close(process.fd)
        var raw: Int32 = 0
        while waitpid(process.pid, &raw, 0) < 0 && errno == EINTR {}
        let (lost, wasServing) = lock.withLock { () -> ([InFlight], Bool) in
            guard self.process === process, !process.retiring else { return ([], false) }
            let lost = inFlight.all.map(\.element).sorted { $0.started < $1.started }
            inFlight.removeAll()
            let wasServing = status == .serving
            if wasServing { status = .restarting }
            return (lost, wasServing)
        }
        guard wasServing else { return }
        let signal = raw & 0x7f
        let how = process.hung ? "killed after --handler-timeout"
            : signal != 0 ? "signal \(signal)" : "exit status \((raw >> 8) & 0xff)"
        let during = lost.first.map { LoadedPlugin.eventNames[Int($0.kind.rawValue)] } ?? "no event"
        Counter(label: "sio_plugin_crashes_total", dimensions: [("plugin", name), ("cause", process.hung ? "timeout" : "crash")]).increment()
        host.logger.error("plugin runner crashed", metadata: [
            "plugin": "\(summary)", "how": "\(how)", "event": "\(during)", "events_lost": "\(lost.count)"])
        for flight in lost {
            host.isolatedEventDone(flight, runner: self, status: SIO_FAIL,
                                   reason: "crashed (\(how)) during \(LoadedPlugin.eventNames[Int(flight.kind.rawValue)])", ack: [], crashed: true)
            if flight.counted { flight.socket.eventLoop.execute { [host] in host.settle(flight) } }
        }
        scheduleRestart()
    }

    // MARK: Restarts

    /// Past this many crashes in `crashWindow` the plugin is marked failed.
    static let crashLimit = 5
    static let crashWindow: Duration = .seconds(60)

    private func scheduleRestart() {
        let now = ContinuousClock.now
        let (delay, failed) = lock.withLock { () -> (Duration, Bool) in
            crashes = crashes.filter { now - $0 < Self.crashWindow } + [now]
            if crashes.count > Self.crashLimit {
                status = .failed
                return (.zero, true)
            }
            // The first restart is immediate; then 100 ms, 200 ms, 400 ms, ...
            let delay: Duration = crashes.count == 1 ? .zero : .milliseconds(100 << (crashes.count - 2))
            return (delay, false)
        }
        if failed {
            host.logger.error("plugin failed: it crashed more than \(Self.crashLimit) times in \(Self.crashWindow); not restarted",
                              metadata: ["plugin": "\(summary)"])
            return
        }
        let milliseconds = Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { [self] in
            let state = lock.withLock { handedOver }
            do {
                try start(state: state)
                Counter(label: "sio_plugin_restarts_total", dimensions: [("plugin", name)]).increment()
                host.logger.warning("plugin restarted after a crash", metadata: ["plugin": "\(summary)", "delay_ms": "\(milliseconds)"])
            } catch {
                host.logger.error("plugin restart failed: \(error)", metadata: ["plugin": "\(summary)"])
                lock.withLock { status = .restarting }
                scheduleRestart()
            }
        }
    }

    // MARK: Events

    /// The runner's handler indexes for an event of `kind`, matching as in-process handlers do.
    func handlerIndexes(for kind: sio_event_kind, matching: (ChannelPattern) -> Bool) -> [Int] {
        var indexes: [Int] = []
        for (index, handler) in handlers.enumerated() where handler.kind == kind {
            if let pattern = handler.pattern, !matching(pattern) { continue }
            indexes.append(index)
        }
        return indexes
    }

    /// A client with this many messages sent to one runner and not answered is not read from
    /// until half of them are: a client sending faster than the plugin handles queues no more
    /// than this (in process, the handler running on the loop is the same brake).
    static let backlogHold = 256
    static let backlogResume = 128

    /// Sends an event (or holds it while a reload switches versions); false when the plugin is
    /// down and the event is not delivered to it. `channels`: what patterns match against, for
    /// a held event.
    func send(_ event: sio_event, handlers indexes: [Int], socket: Socket, kind: sio_event_kind, ticket: sio_ticket,
              ackID: Int?, channels: () -> Set<String>?) -> Bool {
        let counted = kind == SIO_EVENT_MESSAGE && ticket == 0
        let state = counted ? socket.hostState : socket.existingHostState ?? (kind == SIO_EVENT_FINISH ? SocketState() : nil)
        let flight = InFlight(socket: socket, state: state, kind: kind, ticket: ticket, ackID: ackID, started: .now, counted: counted)
        let sent = lock.withLock {
            switch status {
            case .serving:
                guard let process else { return false }
                let withRequest = kind == SIO_EVENT_FINISH || process.requestsSent.insert(socket.id).inserted
                enqueue(EventFields.fields(event, handlers: indexes, request: withRequest), flight: flight, to: process)
                return true
            case .switching:
                held.append(Held(fields: EventFields.encode(event, handlers: [], request: true), kind: kind, flight: flight,
                                 channels: channels()))
                return true
            default:
                return false
            }
        }
        if sent, counted, let state {
            state.runnerBacklog += 1
            if !state.inputHeld, state.runnerBacklog >= Self.backlogHold {
                state.inputHeld = true
                socket.holdInput()
            }
        }
        return sent
    }

    /// Under `lock`.
    private func enqueue(_ fields: [RunnerMessage.Field], flight: InFlight, to process: Process) {
        let id = nextEventID
        nextEventID += 1
        inFlight.insert(flight, id: id)
        process.enqueue(loop: flight.socket.eventLoop) { bytes in
            RunnerMessage.encode(kind: .event, id: id, number: Int64(flight.kind.rawValue), fields: fields, into: &bytes)
        }
    }

    // MARK: Reloading

    /// Replaces the running version with `newData`, in the in-process order: the new build is
    /// mapped and described in a process of its own (an ABI 1.1 build also runs `init`) while
    /// the old one serves, so a build refused there never touches it. Then events wait while
    /// the old process retires (it first handles every event it was sent), its state goes to
    /// the new process (`adopt`, or `init` for ABI 1.0), and the waiting events follow. An
    /// ABI 1.0 build whose `init` fails then leaves the old build serving, restarted from the
    /// state it handed over, as in process.
    func replace(with newData: [UInt8]) -> PluginLoadReport {
        let next: Process
        do {
            let (process, answer) = try launch(newData, fields: [[], Array("prepare".utf8)], serving: false)
            _ = try describe(process, answer, expecting: .prepared)
            next = process
        } catch {
            return host.refuseIsolated(file, "\(error)")
        }
        let paused = ContinuousClock.now
        let old = lock.withLock { () -> Process? in
            let serving = status == .serving ? process : nil
            status = .switching
            serving?.retiring = true
            return serving
        }
        var state = lock.withLock { handedOver }
        if let old {
            old.enqueue(RunnerMessage(kind: .retire))
            if let answer = waitForHandshake(old, timeout: .seconds(5)), answer.kind == .retired {
                state = answer.fields.first ?? []
            } else {
                kill(old.pid, SIGKILL)
                host.logger.error("plugin did not retire in time; its successor starts from the state it handed over before",
                                  metadata: ["plugin": "\(summary)"])
            }
        }
        let oldData = data
        let oldSummary = summary
        lock.withLock {
            handedOver = state
            data = newData
            process = next
        }
        var report: PluginLoadReport
        do {
            next.enqueue(RunnerMessage(kind: .start, fields: [state]))
            try expectLoaded(next, waitForHandshake(next, timeout: .seconds(10)))
            lock.withLock { contentHash = PluginFile.hash(newData) }
            report = PluginLoadReport(file: file, outcome: .reloaded(description))
        } catch {
            report = host.refuseIsolated(file, "\(error)")
            lock.withLock { data = oldData }
            do {
                try start(state: state, switching: true)
                host.logger.warning("plugin restarted from its handed-over state after its successor was refused", metadata: ["plugin": "\(summary)"])
            } catch {
                host.logger.error("plugin lost: its successor was refused and it could not restart: \(error)", metadata: ["plugin": "\(oldSummary)"])
                lock.withLock { status = .failed }
            }
        }
        releaseHeld()
        if case .reloaded = report.outcome {
            // The pause: how long this plugin's events waited, the old version's last ones and
            // the new version's start included (other plugins were not held).
            host.logger.info("plugin reloaded", metadata: [
                "plugin": "\(summary) (ABI \(abi)) from \(file)", "replaced": "\(oldSummary)", "handlers": "\(handlers.count)",
                "pause_us": "\((ContinuousClock.now - paused).microseconds)", "isolated": "yes"])
        }
        return report
    }

    /// Sends what waited during the switch to the version now serving (or completes it as
    /// undelivered when none serves).
    private func releaseHeld() {
        let dropped: [Held] = lock.withLock {
            let waiting = held
            held = []
            guard status == .serving, let process else { return waiting }
            for var event in waiting {
                let indexes = handlerIndexes(for: event.kind) { pattern in event.channels.map { pattern.matchesAny($0) } ?? true }
                guard !indexes.isEmpty else { continue }
                event.fields[0] = EventFields.handlersField(indexes)
                if event.kind != SIO_EVENT_FINISH { process.requestsSent.insert(event.flight.socket.id) }
                enqueue(event.fields.map { .bytes($0) }, flight: event.flight, to: process)
            }
            return []
        }
        for event in dropped {
            host.isolatedEventDone(event.flight, runner: self, status: SIO_OK, reason: "", ack: [])
            let flight = event.flight
            if flight.counted { flight.socket.eventLoop.execute { [host] in host.settle(flight) } }
        }
    }

    /// The socket finished: events of it the runner still holds deferred are void there, so a
    /// late `complete` gets SIO_ERR_STATE as it would in process.
    /// Everything it was sent is answered (or it is down): what shutdown waits for.
    var isSettled: Bool {
        lock.withLock { process == nil || (inFlight.isEmpty && held.isEmpty) }
    }

    func socketFinished(_ socket: Socket) {
        lock.withLock {
            guard let process else { return }
            // A message stays in flight: the runner answers its cancel, or handles it in turn
            // (what it sends to others still goes out).
            for id in inFlight.ids(where: { $0.socket === socket && ($0.ticket != 0 || $0.kind == SIO_EVENT_MESSAGE) }) {
                if inFlight[id]?.ticket != 0 { inFlight.remove(id) }
                process.enqueue(RunnerMessage(kind: .cancel, id: id))
            }
            if process.requestsSent.remove(socket.id) != nil {
                process.enqueue(RunnerMessage(kind: .forget, fields: [Array(socket.id.utf8)]))
            }
        }
    }

    /// An emit_with_ack's outcome, as a callback event of its own in the runner.
    func sendAckReply(callback: UInt64, outcome: AckOutcome, socket: Socket) {
        lock.withLock {
            guard status == .serving, let process else { return }
            var eventID: UInt64 = 0
            var fields: [[UInt8]] = [Array(socket.id.utf8), Array(socket.namespace.utf8), [], []]
            let number: sio_status
            switch outcome {
            case .answered(let arguments, let attachments):
                number = SIO_OK
                fields[2] = Array(JSONValue.array(arguments).jsonText.utf8)
                fields.append(RunnerMessage.pack(attachments.map { Array($0.readableBytesView) }))
            case .timedOut:
                number = SIO_ERR_TIMEOUT
            case .disconnected:
                number = SIO_ERR_NO_SOCKET
            }
            if number != SIO_ERR_NO_SOCKET {
                eventID = nextEventID
                nextEventID += 1
                inFlight.insert(InFlight(socket: socket, state: socket.existingHostState, kind: SIO_EVENT_MESSAGE, ticket: 0, started: .now),
                                id: eventID)
            }
            fields[3] = Array(String(eventID).utf8)
            process.enqueue(RunnerMessage(kind: .ackReply, id: callback, number: Int64(number), fields: fields))
        }
    }

    /// Ends a runner whose handler ran past `--handler-timeout` (the crash path restarts it);
    /// false when it is already being ended.
    private func killHung(_ process: Process) -> Bool {
        lock.withLock {
            guard self.process === process, !process.hung else { return false }
            process.hung = true
            kill(process.pid, SIGKILL)
            return true
        }
    }

    var isSwitching: Bool { lock.withLock { status == .switching } }

    // MARK: Retiring

    /// Tells the plugin it is replaced or removed and takes its state; the process exits.
    func retire() -> [UInt8] {
        guard let process: Process = lock.withLock({ () -> Process? in
            self.process?.retiring = true
            guard status == .serving else { return nil }
            return self.process
        }) else {
            lock.withLock { status = .retired }
            return lock.withLock { handedOver }
        }
        process.enqueue(RunnerMessage(kind: .retire))
        let answer = waitForHandshake(process, timeout: .seconds(5))
        lock.withLock { status = .retired }
        guard let answer, answer.kind == .retired else {
            kill(process.pid, SIGKILL)
            return lock.withLock { handedOver }
        }
        return answer.fields.first ?? []
    }

    /// A restart begins from this (a reload's handed-over state).
    func remember(_ state: [UInt8]) {
        lock.withLock { handedOver = state }
    }

    var description: PluginDescription {
        let status = lock.withLock { self.status }
        let word: String
        switch status {
        case .serving, .starting, .switching: word = "serving"
        case .restarting: word = "restarting"
        case .failed: word = "failed"
        case .retired: word = "retired"
        }
        return PluginDescription(file: file, name: name, version: version, abi: abi,
                                 handlers: handlers.map { .init(event: LoadedPlugin.eventNames[Int($0.kind.rawValue)], pattern: $0.pattern?.source) },
                                 runner: word)
    }
}
