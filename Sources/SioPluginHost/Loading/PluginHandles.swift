import NIOConcurrencyHelpers

/// The numbers handed to plugins as `sio_plugin *`: issued once, resolved under a lock (plugin
/// handles come back on register, log and the out-of-band calls, none of them per delivery).
enum PluginHandles {
    private static let table = NIOLockedValueBox<(next: UInt, plugins: [UInt: LoadedPlugin], retired: [UInt: Retired])>((1, [:], [:]))

    /// What a revoked handle still answers for: `complete` of its plugin's tickets. A task of a
    /// replaced Swift version (its image stays mapped) may finish after the reload, and the
    /// event it deferred must not wait for the timeout. A few bytes per reload.
    struct Retired {
        let name: String
        unowned let host: PluginHost
    }

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
        table.withLockedValue { table in
            guard let plugin = table.plugins.removeValue(forKey: number) else { return }
            table.retired[number] = Retired(name: plugin.name, host: plugin.host)
        }
    }

    /// The plugin a live or revoked handle belongs to, for `complete`.
    static func owner(_ handle: OpaquePointer?) -> Retired? {
        let number = UInt(bitPattern: handle)
        return table.withLockedValue { table in
            if let plugin = table.plugins[number] { return Retired(name: plugin.name, host: plugin.host) }
            return table.retired[number]
        }
    }
}
