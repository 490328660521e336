import CSioPlugin
import CoreMetrics

/// One registered handler of a plugin.
///
/// `@unchecked Sendable`: `userData` is the plugin's own pointer, handed back to its handler on
/// whichever thread runs it, as the ABI's threading rules (docs/abi.md) allow.
struct PluginHandler: @unchecked Sendable {
    let kind: sio_event_kind
    let pattern: ChannelPattern?
    let function: sio_handler_fn
    let userData: UnsafeMutableRawPointer?
    /// How long its calls take and how often they fail, under the plugin's name and the event:
    /// handlers of one plugin and event, and successive versions of a plugin, share them.
    let duration: Timer
    let errors: Counter

    init(kind: sio_event_kind, pattern: ChannelPattern?, function: sio_handler_fn, userData: UnsafeMutableRawPointer?, plugin: String) {
        self.kind = kind
        self.pattern = pattern
        self.function = function
        self.userData = userData
        let dimensions = [("plugin", plugin), ("event", LoadedPlugin.eventNames[Int(kind.rawValue)])]
        self.duration = Timer(label: "sio_handler_duration_seconds", dimensions: dimensions)
        self.errors = Counter(label: "sio_handler_errors_total", dimensions: dimensions)
    }
}
