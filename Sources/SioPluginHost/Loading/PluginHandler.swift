import CSioPlugin

/// One registered handler of a plugin.
struct PluginHandler: @unchecked Sendable {
    let kind: sio_event_kind
    let pattern: ChannelPattern?
    let function: sio_handler_fn
    let userData: UnsafeMutableRawPointer?
}
