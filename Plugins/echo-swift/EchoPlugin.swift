import Foundation
import SioPlugin

/// The Swift twin of Plugins/echo-c: whatever a client sends comes back to it.
@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(name: "echo-swift", version: "1.0.0") { on in
        on.message { request, socket, context, message in
            if message.event == "message", let value = message.arguments.first, message.attachments.isEmpty {
                try socket.send(value)
            } else {
                try socket.emit(message.event, message.arguments.first ?? NSNull())
            }
            if message.ackID != nil { try socket.ack(message, message.arguments.first ?? NSNull()) }
        }
    }
}
