import Foundation
import SioPlugin

/// The Swift twin of Tests/plugins/versioned.c. The tests make version 2 by patching the marker
/// below in the built library, so both versions are the same Swift module resident at once:
/// the case where name-based runtime lookups could cross between images.
private let marker = "sio-test-plugin-version:1"  // longer than 15 bytes: stored in the image
private var version: String { "v" + String(marker.last!) }
private let counter = NSLock()
nonisolated(unsafe) private var seen = 0
nonisolated(unsafe) private var inherited = 0

@_cdecl("sio_plugin_entry")
public func sioPluginEntry() -> UnsafeRawPointer {
    Plugin.define(
        name: "swift-versioned", version: version,
        restore: { state in inherited = Int(String(decoding: state, as: UTF8.self)) ?? 0 },
        retire: { counter.withLock { Array(String(inherited + seen).utf8) } }
    ) { on in
        on.message { request, socket, context, message in
            guard message.ackID != nil else { return }
            let total = counter.withLock { () -> Int in
                seen += 1
                return inherited + seen
            }
            if message.event == "state" {
                try socket.ack(message, version, total)
            } else {
                try socket.ack(message, version, message.arguments.first ?? 0)
            }
        }
    }
}
