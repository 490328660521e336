import CSioPlugin
import Foundation

/// Turns a plugin file into a `LoadedPlugin`, or says why not.
final class PluginLoader: @unchecked Sendable {
    /// Where private copies of plugin files are mapped from; only the server's user can write it.
    let privateDirectory: String
    private var serial = 0
    private let lock = NSLock()

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/sio-plugins-XXXXXX").utf8CString)
        guard let path = mkdtemp(&template) else {
            throw PluginLoadError.notAPlugin("cannot create a private directory for plugin copies")
        }
        privateDirectory = String(cString: path)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: privateDirectory)
    }

    private func nextSerial() -> Int {
        lock.lock()
        defer { lock.unlock() }
        serial += 1
        return serial
    }

    /// Loads `data`, the content of `file` read once by the caller (who also hashed it).
    func load(file: String, data: Data, host: PluginHost, previousState: [UInt8]) throws(PluginLoadError) -> LoadedPlugin {
        try PluginFileCheck.checkPluginFile(file)
        let image = try PluginImage.open(data, of: file, into: privateDirectory, serial: nextSerial())
        do {
            let plugin = try initialise(image: image, file: file, host: host, previousState: previousState)
            plugin.contentHash = PluginFile.hash(data)
            return plugin
        } catch {
            image.close()
            throw error
        }
    }

    private func initialise(image: PluginImage, file: String, host: PluginHost, previousState: [UInt8]) throws(PluginLoadError) -> LoadedPlugin {
        guard let symbol = image.symbol(SIO_PLUGIN_ENTRY_SYMBOL) else { throw .missingEntrySymbol }
        let entry = unsafeBitCast(symbol, to: sio_plugin_entry_fn.self)
        guard let info = entry() else { throw .badInfo("sio_plugin_entry returned NULL") }
        // Read abi_major only once the struct is known to be large enough to hold it.
        let majorEnd = MemoryLayout<sio_plugin_info>.offset(of: \.abi_major)! + MemoryLayout<UInt32>.size
        guard info.pointee.struct_size >= majorEnd else { throw .badInfo("struct_size \(info.pointee.struct_size) is too small") }
        guard info.pointee.abi_major == SioABI.major else { throw .abiMismatch(pluginMajor: info.pointee.abi_major) }
        let nameEnd = MemoryLayout<sio_plugin_info>.offset(of: \.name)! + MemoryLayout<UnsafeRawPointer>.size
        guard info.pointee.struct_size >= nameEnd, info.pointee.name != nil else { throw .badInfo("name is NULL") }
        let initEnd = MemoryLayout<sio_plugin_info>.offset(of: \.`init`)! + MemoryLayout<UnsafeRawPointer>.size
        guard info.pointee.struct_size >= initEnd, let initialise = info.pointee.`init` else {
            throw .badInfo("no init function")
        }
        let plugin = LoadedPlugin(file: file, info: info, image: image, host: host)
        let status = previousState.withUnsafeBufferPointer { state in
            initialise(HostAPI.table, plugin.handle,
                       sio_buf(ptr: state.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: state.count))
        }
        plugin.finishInitialisation()
        guard status == SIO_OK else { throw .initFailed("init returned status \(status)") }
        guard plugin.registrationErrors.isEmpty else { throw .registration(plugin.registrationErrors) }
        return plugin
    }
}
