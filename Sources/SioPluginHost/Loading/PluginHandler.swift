import CSioPlugin

/// One registered handler of a plugin.
///
/// `@unchecked Sendable`: `userData` is the plugin's own pointer, handed back to its handler on
/// whichever thread runs it, as the ABI's threading rules (docs/abi.md) allow.
struct PluginHandler: @unchecked Sendable {
    let kind: sio_event_kind
    let pattern: ChannelPattern?
    let function: sio_handler_fn
    let userData: UnsafeMutableRawPointer?
}
