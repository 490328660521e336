import CSioPlugin
import Foundation

/// Turns a plugin file into a `LoadedPlugin`, or says why not.
///
/// `@unchecked Sendable`: its one mutable field, the copy serial, is touched under the host's
/// reload lock only (one reload at a time).
final class PluginLoader: @unchecked Sendable {
    /// Where private copies of plugin files are mapped from; only the server's user can write it.
    let privateDirectory: String
    private var serial = 0
    private let lock = NSLock()

    let probe: PluginProbe?

    init(probe: PluginProbe?) throws {
        self.probe = probe
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

    /// A build mapped and described, not yet initialised: everything that can refuse a file
    /// without touching the version it would replace.
    struct Prepared {
        let file: String
        let data: [UInt8]
        let image: PluginImage
        let info: UnsafePointer<sio_plugin_info>

        /// ABI 1.1: the build takes its predecessor's state in `adopt`, so it can be
        /// initialised before anything happens to the version it replaces.
        var adopt: (@convention(c) (OpaquePointer?, sio_buf) -> Void)? {
            let end = MemoryLayout<sio_plugin_info>.offset(of: \.adopt)! + MemoryLayout<UnsafeRawPointer>.size
            return info.pointee.struct_size >= end ? info.pointee.adopt : nil
        }
    }

    /// Loads `data`, the content of `file` read once by the caller (who also hashed it), and
    /// hands it `previousState` the way its ABI version takes it (`adopt`, or `init`).
    func load(file: String, data: [UInt8], host: PluginHost, previousState: [UInt8]) throws(PluginLoadError) -> LoadedPlugin {
        let prepared = try prepare(file: file, data: data)
        guard let adopt = prepared.adopt else { return try initialise(prepared, host: host, previousState: previousState) }
        let plugin = try initialise(prepared, host: host, previousState: [])
        Self.hand(previousState, to: adopt, of: plugin)
        return plugin
    }

    static func hand(_ state: [UInt8], to adopt: @convention(c) (OpaquePointer?, sio_buf) -> Void, of plugin: LoadedPlugin) {
        state.withUnsafeBufferPointer { bytes in
            adopt(plugin.handle, sio_buf(ptr: bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: bytes.count))
        }
    }

    func prepare(file: String, data: [UInt8]) throws(PluginLoadError) -> Prepared {
        try PluginFileCheck.checkPluginFile(file)
        let image = try PluginImage.open(data, of: file, into: privateDirectory, serial: nextSerial(), probe: probe)
        do {
            return Prepared(file: file, data: data, image: image, info: try describe(image))
        } catch {
            image.close()
            throw error
        }
    }

    private func describe(_ image: PluginImage) throws(PluginLoadError) -> UnsafePointer<sio_plugin_info> {
        try Self.describe(entry: image.symbol(SIO_PLUGIN_ENTRY_SYMBOL))
    }

    /// The plugin's description through its entry symbol, checked field by field before it is
    /// read: here, and in a plugin runner.
    static func describe(entry symbol: UnsafeMutableRawPointer?) throws(PluginLoadError) -> UnsafePointer<sio_plugin_info> {
        guard let symbol else { throw .missingEntrySymbol }
        let entry = unsafeBitCast(symbol, to: sio_plugin_entry_fn.self)
        guard let info = entry() else { throw .badInfo("sio_plugin_entry returned NULL") }
        // Read abi_major only once the struct is known to be large enough to hold it.
        let majorEnd = MemoryLayout<sio_plugin_info>.offset(of: \.abi_major)! + MemoryLayout<UInt32>.size
        guard info.pointee.struct_size >= majorEnd else { throw .badInfo("struct_size \(info.pointee.struct_size) is too small") }
        guard info.pointee.abi_major == SioABI.major else { throw .abiMismatch(pluginMajor: info.pointee.abi_major) }
        let nameEnd = MemoryLayout<sio_plugin_info>.offset(of: \.name)! + MemoryLayout<UnsafeRawPointer>.size
        guard info.pointee.struct_size >= nameEnd, info.pointee.name != nil else { throw .badInfo("name is NULL") }
        let initEnd = MemoryLayout<sio_plugin_info>.offset(of: \.`init`)! + MemoryLayout<UnsafeRawPointer>.size
        guard info.pointee.struct_size >= initEnd, info.pointee.`init` != nil else { throw .badInfo("no init function") }
        return info
    }

    /// Runs `init`; on any refusal the image is closed and the plugin's handle revoked.
    func initialise(_ prepared: Prepared, host: PluginHost, previousState: [UInt8]) throws(PluginLoadError) -> LoadedPlugin {
        let plugin = LoadedPlugin(file: prepared.file, data: prepared.data, info: prepared.info, image: prepared.image, host: host)
        let status = previousState.withUnsafeBufferPointer { state in
            prepared.info.pointee.`init`!(HostAPI.table, plugin.handle,
                sio_buf(ptr: state.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: state.count))
        }
        plugin.finishInitialisation()
        do throws(PluginLoadError) {
            // A refused registration is the better reason when init passes its status on.
            guard plugin.registrationErrors.isEmpty else { throw .registration(plugin.registrationErrors) }
            guard status == SIO_OK else { throw .initFailed("init returned status \(status)") }
        } catch {
            plugin.revoke()
            prepared.image.close()
            throw error
        }
        plugin.contentHash = PluginFile.hash(prepared.data)
        return plugin
    }
}
