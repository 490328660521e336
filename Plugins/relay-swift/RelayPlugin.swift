import Foundation
import SioPlugin

/// The benchmark relay in Swift: a message {"ch": CHANNEL, ...} goes to the other subscribers
/// of CHANNEL. Same behaviour as Plugins/relay-c/relay.c.
@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(name: "relay-swift", version: "1.0.0") { on in
        on.message { request, socket, context, message in
            guard let body = message.arguments.first as? [String: Any], let channel = body["ch"] as? String else { return }
            try socket.broadcastChannel(body, channel: channel)
        }
    }
}
