import Foundation

/// Where a plugin keeps what it knows across events and reloads (rooms, users, counters):
/// handlers of different sockets run at once on different threads, so the value is reached one
/// caller at a time through `withValue`; and on a reload it is handed to the next version as
/// JSON (`Codable`), through `retire` and `adopt`, without the plugin writing either.
///
///     struct Rooms: Codable, Sendable { var names: [String: Int] = [:] }
///
///     Plugin.define(name: "chat", version: "2.0.0", state: Rooms()) { on, rooms in
///         on.subscribe { request, socket, context, channel in
///             rooms.withValue { $0.names[channel, default: 0] += 1 }
///         }
///     }
///
/// `@unchecked Sendable`: the value is reached under the lock only.
public final class PluginState<Value: Codable & Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Reads or changes the value; other callers wait meanwhile, so keep the body short.
    /// Sending from inside is fine; calls that raise events into the plugin at once
    /// (`disconnect`, `unsubscribe`) are not: their handlers would wait for this very lock.
    public func withValue<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// A copy of the value as it is now.
    public var current: Value { withValue { $0 } }

    func encoded() -> [UInt8] {
        (try? JSONEncoder().encode(current)).map(Array.init) ?? []
    }

    /// What the previous version handed over; false (and nothing changed) when it does not
    /// decode as `Value`, e.g. after the type changed between versions.
    func restore(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty, let decoded = try? JSONDecoder().decode(Value.self, from: Data(bytes)) else { return false }
        withValue { $0 = decoded }
        return true
    }
}

extension Plugin {
    /// `define`, with a state of the plugin's own that survives reloads: `setup` receives it
    /// beside the handlers. On a reload the previous version's value arrives before the first
    /// event of this one; one that does not decode as `Value` is logged and `initial` is kept.
    public static func define<Value: Codable & Sendable>(
        name: String, version: String, state initial: Value,
        _ setup: @escaping (inout Handlers, PluginState<Value>) -> Void
    ) -> UnsafeRawPointer {
        let state = PluginState(initial)
        return define(
            name: name, version: version,
            restore: { bytes in
                if !bytes.isEmpty && !state.restore(bytes) {
                    Plugin.log("the previous version's state does not decode as \(Value.self); starting afresh", level: .warning)
                }
            },
            retire: { state.encoded() }
        ) { on in setup(&on, state) }
    }
}
