#if canImport(Glibc)
import Glibc
#endif
import Atomics
import CSioPlugin
import NIOConcurrencyHelpers

/// What one thread that runs handlers knows about the events it is running: the stack of open
/// event scopes (a handler's `disconnect` runs `on_disconnect` inside it), the plugin set the
/// outermost event pinned, and the serial that makes every socket handle it hands out unique.
///
/// A `sio_socket *` is not an address but three numbers: the thread it was issued on, the depth
/// of its scope in that thread's stack, and the scope's serial. Resolving one reads only this
/// thread's own stack, so a stale, forged or foreign handle is told apart from a live one
/// without locks, atomics or undefined behaviour: it resolves to nil, and the host function
/// returns `SIO_ERR_STATE`.
///
/// `@unchecked Sendable` because it is shared with the watchdog: its scopes, serial and pinned
/// set are touched only by the thread it belongs to (it is found through thread-local storage),
/// and the watchdog, on its own thread, reads `activity`, under `activityLock`, and nothing else.
final class DispatchThread: @unchecked Sendable {
    /// 12 bits of thread, 8 of depth, 44 of serial (200 days of events at a million a second
    /// before a serial repeats).
    static let maximumDepth = 255
    private static let serialBits: UInt64 = 44
    private static let depthBits: UInt64 = 8
    private static let serialMask: UInt64 = (1 << serialBits) - 1
    private static let maximumThreads: UInt64 = 1 << 12

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<DispatchThread>.fromOpaque(pointer).release() }
        }
        return key
    }()
    private static let nextIndex = ManagedAtomic<UInt64>(1)

    /// This thread's, created on its first event.
    static var current: DispatchThread {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<DispatchThread>.fromOpaque(pointer).takeUnretainedValue()
        }
        // Indexes past 4095 (threads that come and go) wrap, skipping 0: a handle of a thread
        // that is gone can then only match a live scope by also matching its 44-bit serial.
        let raw = nextIndex.loadThenWrappingIncrement(ordering: .relaxed)
        let thread = DispatchThread(index: raw % (maximumThreads - 1) + 1)
        pthread_setspecific(key, Unmanaged.passRetained(thread).toOpaque())
        registry.withLockedValue { $0.append(thread) }
        return thread
    }

    /// Every thread that has run a handler, for the watchdog. Event-loop threads live as long as
    /// the server, so the list stays short.
    static let registry = NIOLockedValueBox<[DispatchThread]>([])

    /// The outermost handler this thread is running, if any, as the watchdog reads it.
    struct Activity {
        var started: ContinuousClock.Instant
        var plugin: String
        var kind: sio_event_kind
        var socketID: String
        var warned: ContinuousClock.Instant?
    }

    private let activityLock = NIOLock()
    private var activity: Activity?

    func began(plugin: String, kind: sio_event_kind, socketID: String, at now: ContinuousClock.Instant) {
        activityLock.withLock { activity = Activity(started: now, plugin: plugin, kind: kind, socketID: socketID) }
    }

    func ended() {
        activityLock.withLock { activity = nil }
    }

    /// The running handler if it has run for `threshold` and was not reported in the last
    /// `repeatEvery`; marks it reported.
    func overdue(threshold: Duration, repeatEvery: Duration) -> Activity? {
        let now = ContinuousClock.now
        return activityLock.withLock {
            guard var running = activity, now - running.started >= threshold else { return nil }
            if let warned = running.warned, now - warned < repeatEvery { return nil }
            running.warned = now
            activity = running
            return running
        }
    }

    private static var currentIfAny: DispatchThread? {
        pthread_getspecific(key).map { Unmanaged<DispatchThread>.fromOpaque($0).takeUnretainedValue() }
    }

    private let index: UInt64
    private var scopes: [EventScope] = []
    private var serial: UInt64 = 0
    /// The set the outermost event runs on; nested events run on it too, so that a reload never
    /// waits for an event that waits for it.
    var pinned: PluginSet?

    private init(index: UInt64) {
        self.index = index
    }

    var depth: Int { scopes.count }

    /// Opens `scope` on this thread and returns its handle; nil past the maximum depth.
    func open(_ scope: EventScope) -> OpaquePointer? {
        guard scopes.count < Self.maximumDepth else { return nil }
        serial = (serial + 1) & Self.serialMask
        if serial == 0 { serial = 1 }
        scope.serial = serial
        scopes.append(scope)
        let bits = index << (Self.serialBits + Self.depthBits) | UInt64(scopes.count - 1) << Self.serialBits | serial
        return OpaquePointer(bitPattern: UInt(bits))
    }

    /// Closes the innermost scope: its handle resolves to nothing from now on.
    func close(_ scope: EventScope) {
        if scopes.last === scope { scopes.removeLast() }
    }

    /// The live scope behind `handle`, if it was issued on the calling thread and its event is
    /// still running.
    static func scope(for handle: OpaquePointer?) -> EventScope? {
        guard let thread = currentIfAny else { return nil }
        let bits = UInt64(UInt(bitPattern: handle))
        guard bits >> (serialBits + depthBits) == thread.index else { return nil }
        let depth = Int((bits >> serialBits) & ((1 << depthBits) - 1))
        guard depth < thread.scopes.count else { return nil }
        let scope = thread.scopes[depth]
        return scope.serial == bits & serialMask ? scope : nil
    }
}
