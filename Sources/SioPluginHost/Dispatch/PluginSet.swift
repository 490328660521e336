import Atomics

/// One generation of loaded plugins. Dispatch pins a generation for the length of one event
/// (the in-flight count), so a reload can tell when nothing runs on a retired version anymore.
final class PluginSet: Sendable {
    let plugins: [LoadedPlugin]
    let inFlight = ManagedAtomic<Int>(0)

    init(_ plugins: [LoadedPlugin]) {
        self.plugins = plugins
    }
}
