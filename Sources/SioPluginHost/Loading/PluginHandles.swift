import NIOConcurrencyHelpers

/// The numbers handed to plugins as `sio_plugin *`: issued once, resolved under a lock (plugin
/// handles come back on register, log and the out-of-band calls, none of them per delivery).
enum PluginHandles {
    private static let table = NIOLockedValueBox<(next: UInt, plugins: [UInt: LoadedPlugin])>((1, [:]))

    static func issue(_ plugin: LoadedPlugin) -> OpaquePointer? {
        table.withLockedValue { table in
            let number = table.next
            table.next += 1
            table.plugins[number] = plugin
            return OpaquePointer(bitPattern: number)
        }
    }

    static func resolve(_ handle: OpaquePointer?) -> LoadedPlugin? {
        let number = UInt(bitPattern: handle)
        return table.withLockedValue { $0.plugins[number] }
    }

    static func revoke(_ handle: OpaquePointer?) {
        let number = UInt(bitPattern: handle)
        _ = table.withLockedValue { $0.plugins.removeValue(forKey: number) }
    }
}
