import CSioPlugin
import NIOConcurrencyHelpers

/// A plugin as loaded: its image, what it said about itself, and its handlers.
///
/// The `sio_plugin *` the plugin sees is a number, never reused, that `PluginHandles` maps back
/// here until the plugin is retired or refused; a plugin thread that calls in after that gets
/// `SIO_ERR_STATE`, not a dangling object.
///
/// `@unchecked Sendable`: what changes (handlers, content hash, retirement) changes during
/// `init` or a reload, under the host's reload lock and before or after the plugin is in a
/// published `PluginSet`; event loops only read a published plugin. `info` points into the
/// mapped image, read-only, and lives as long as `image`.
final class LoadedPlugin: @unchecked Sendable {
    let file: String
    /// The file's content, kept to start this build afresh should its successor fail to
    /// initialise after it was retired.
    let data: [UInt8]
    let name: String
    let version: String
    let abiMajor: UInt32
    let abiMinor: UInt32
    /// "name version", built once: the watchdog's record of a running handler takes it per call.
    let summaryForWatchdog: String
    let info: UnsafePointer<sio_plugin_info>
    let image: PluginImage
    unowned let host: PluginHost

    /// Identifies the file content this version came from, so a reload can say "unchanged".
    var contentHash: UInt64 = 0

    /// Filled during init only; frozen afterwards.
    private(set) var handlers: [PluginHandler] = []
    private(set) var registrationErrors: [String] = []
    private(set) var initialising = true

    private(set) var handle: OpaquePointer?
    private var isRetired = false

    init(file: String, data: [UInt8], info: UnsafePointer<sio_plugin_info>, image: PluginImage, host: PluginHost) {
        self.file = file
        self.data = data
        self.info = info
        self.image = image
        self.host = host
        self.name = info.pointee.name.map { String(cString: $0) } ?? "(unnamed)"
        self.version = info.pointee.version.map { String(cString: $0) } ?? "(unversioned)"
        self.abiMajor = info.pointee.abi_major
        self.abiMinor = info.pointee.abi_minor
        self.summaryForWatchdog = "\(name) \(version)"
        self.handle = PluginHandles.issue(self)
    }

    static func from(_ handle: OpaquePointer?) -> LoadedPlugin? {
        PluginHandles.resolve(handle)
    }

    /// The plugin will never be called again: its handle stops resolving.
    func revoke() {
        PluginHandles.revoke(handle)
    }

    func register(kind: sio_event_kind, pattern: String?, function: sio_handler_fn, userData: UnsafeMutableRawPointer?) -> sio_status {
        guard initialising else { return SIO_ERR_STATE }
        guard kind.rawValue < UInt32(SIO_EVENT_KIND_COUNT) else {
            registrationErrors.append("unknown event kind \(kind.rawValue)")
            return SIO_ERR_INVALID
        }
        var compiled: ChannelPattern?
        if let pattern {
            guard kind != SIO_EVENT_CONNECT else {
                registrationErrors.append("on_connect cannot be bound to a channel (pattern \(pattern.debugDescription))")
                return SIO_ERR_INVALID
            }
            do {
                compiled = try ChannelPattern(pattern)
            } catch {
                registrationErrors.append("channel pattern \(pattern.debugDescription) does not compile: \(error)")
                return SIO_ERR_INVALID
            }
        }
        handlers.append(PluginHandler(kind: kind, pattern: compiled, function: function, userData: userData, plugin: name))
        return SIO_OK
    }

    func finishInitialisation() {
        initialising = false
    }

    func handlers(for kind: sio_event_kind) -> some Sequence<PluginHandler> {
        handlers.lazy.filter { $0.kind == kind }
    }

    /// Tells the plugin it is being replaced or removed, and takes the state it hands on. The
    /// host calls it with no handler of this version running, and none is called afterwards;
    /// it runs once, whatever else happens to the reload.
    func retire() -> [UInt8] {
        guard !isRetired else { return [] }
        isRetired = true
        defer { revoke() }
        let retireEnd = MemoryLayout<sio_plugin_info>.offset(of: \.retire)! + MemoryLayout<UnsafeRawPointer>.size
        guard info.pointee.struct_size >= retireEnd, let retire = info.pointee.retire else { return [] }
        return retire(handle).bytes
    }

    var summary: String {
        "\(name) \(version) (ABI \(abiMajor).\(abiMinor)) from \(file)"
    }
}
