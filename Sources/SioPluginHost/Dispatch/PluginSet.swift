import Atomics

/// One generation of loaded plugins. Dispatch pins a generation for the length of one event
/// (the in-flight count), so a reload can tell when nothing runs on a retired version anymore.
final class PluginSet: Sendable {
    let plugins: [LoadedPlugin]
    /// Isolated mode: plugins in runner processes.
    let runners: [PluginRunner]
    let inFlight = ManagedAtomic<Int>(0)

    init(_ plugins: [LoadedPlugin], runners: [PluginRunner] = []) {
        self.plugins = plugins
        self.runners = runners
    }
}
