import Foundation
import SioPlugin

/// The Swift twin of Tests/plugins/versioned.c. The tests make version 2 by patching the marker
/// below in the built library, so both versions are the same Swift module resident at once:
/// the case where name-based runtime lookups could cross between images. Its count lives in
/// the SDK's `PluginState`, handed from version to version as JSON: no globals, no lock here.
private let marker = "sio-test-plugin-version:1"  // longer than 15 bytes: stored in the image
private var version: String { "v" + String(marker.last!) }

private struct Count: Codable, Sendable {
    var handled = 0
}

@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(name: "swift-versioned", version: version, state: Count()) { on, count in
        on.message { request, socket, context, message in
            guard message.ackID != nil else { return }
            let total = count.withValue { count -> Int in
                count.handled += 1
                return count.handled
            }
            if message.event == "state" {
                try socket.ack(message, version, total)
            } else {
                try socket.ack(message, version, message.arguments.first ?? 0)
            }
        }
    }
}
