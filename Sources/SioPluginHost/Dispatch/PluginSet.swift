import Atomics

/// One generation of loaded plugins. Dispatch pins a generation for the length of one event
/// (the in-flight count), so a reload can tell when nothing runs on a retired version anymore.
final class PluginSet: Sendable {
    let plugins: [LoadedPlugin]
    /// Isolated mode: plugins in runner processes.
    let runners: [PluginRunner]
    let inFlight: ManagedAtomic<Int>

    /// `sharing`: the counter of the set this one replaces without a drain (a change of
    /// runners only), so that events pinned to either are the same count for the next reload.
    init(_ plugins: [LoadedPlugin], runners: [PluginRunner] = [], sharing inFlight: ManagedAtomic<Int>? = nil) {
        self.plugins = plugins
        self.runners = runners
        self.inFlight = inFlight ?? ManagedAtomic<Int>(0)
    }
}
