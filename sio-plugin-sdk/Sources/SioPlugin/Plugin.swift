import CSioPlugin
import Foundation

/// A handler plugin written in Swift.
///
/// The SDK is compiled into each plugin image; it depends on the C header only, never on the
/// server's modules, so a plugin carries no second copy of the server. Every plugin image has
/// its own copy of this file's globals, which is what ties the C entry points back to the one
/// `Plugin` of that image.
///
///     @_cdecl("sio_plugin_entry")
///     public func entry() -> UnsafeRawPointer {
///         Plugin.define(name: "echo", version: "1.0.0") { on in
///             on.message { request, socket, context, message in
///                 try socket.send(message.arguments.first ?? NSNull())
///             }
///         }
///     }
public final class Plugin {
    /// Handlers registered by `define`'s closure, in registration order.
    var registrations: [(kind: sio_event_kind, pattern: String?, handler: AnyHandler)] = []
    var retire: (() -> [UInt8])?
    var restore: (([UInt8]) -> Void)?
    fileprivate(set) var api: UnsafePointer<sio_host_api>?
    fileprivate(set) var handle: OpaquePointer?
    private let info: UnsafeMutablePointer<sio_plugin_info>

    nonisolated(unsafe) fileprivate(set) static var current: Plugin?

    private init(name: String, version: String) {
        info = UnsafeMutablePointer<sio_plugin_info>.allocate(capacity: 1)
        info.initialize(to: sio_plugin_info(
            struct_size: MemoryLayout<sio_plugin_info>.size,
            abi_major: UInt32(SIO_ABI_MAJOR), abi_minor: UInt32(SIO_ABI_MINOR),
            name: UnsafePointer(strdup(name)), version: UnsafePointer(strdup(version)),
            init: pluginInit, retire: pluginRetire, adopt: pluginAdopt))
    }

    /// Describes the plugin; call it from the exported `sio_plugin_entry` and return the result.
    /// The closure runs once, when the host initialises the plugin.
    ///
    /// - Parameters:
    ///   - restore: receives what the previous version's `retire` returned, on a live reload.
    ///   - retire: state to hand to the next version when this one is replaced.
    public static func define(name: String, version: String, restore: (([UInt8]) -> Void)? = nil,
                              retire: (() -> [UInt8])? = nil, _ setup: @escaping (inout Handlers) -> Void) -> UnsafeRawPointer {
        if let current { return UnsafeRawPointer(current.info) }
        let plugin = Plugin(name: name, version: version)
        var handlers = Handlers()
        setup(&handlers)
        plugin.registrations = handlers.registrations
        plugin.restore = restore
        plugin.retire = retire
        current = plugin
        return UnsafeRawPointer(plugin.info)
    }

    /// How much a log line matters; the server's `--log-level` decides what is written.
    public enum LogLevel: Sendable {
        case debug, info, warning, error

        var c: sio_log_level {
            switch self {
            case .debug: return SIO_LOG_DEBUG
            case .info: return SIO_LOG_INFO
            case .warning: return SIO_LOG_WARNING
            case .error: return SIO_LOG_ERROR
            }
        }
    }

    /// Logs a line through the server, attributed to this plugin. Any thread.
    public static func log(_ message: String, level: LogLevel = .info) {
        guard let plugin = current, let api = plugin.api else { return }
        withBuf(message) { api.pointee.log!(plugin.handle, level.c, $0) }
    }

    /// Out-of-band sending, from any thread: each throws `SioError.noSocket` when nobody is there.
    public static func broadcast(_ message: Any, namespace: String = "/") throws {
        try outOfBand { api, handle in
            try withJSON(message) { json in withBuf(namespace) { api.pointee.oob_broadcast!(handle, $0, json) } }
        }
    }

    public static func broadcastChannel(_ message: Any, channel: String, namespace: String = "/") throws {
        try outOfBand { api, handle in
            try withJSON(message) { json in
                withBuf(namespace) { ns in withBuf(channel) { api.pointee.oob_broadcast_channel!(handle, ns, json, $0) } }
            }
        }
    }

    public static func send(sessionID: String, _ message: Any, namespace: String = "/") throws {
        try outOfBand { api, handle in
            try withJSON(message) { json in
                withBuf(namespace) { ns in withBuf(sessionID) { api.pointee.oob_send!(handle, ns, $0, json) } }
            }
        }
    }

    /// Any event, out of band (ABI 1.2): to the subscribers of `channel`, or to every socket of
    /// the namespace when it is nil. Throws `SioError.noSocket` when nobody was reached.
    public static func emit(_ event: String, _ arguments: Any..., toChannel channel: String?, namespace: String = "/") throws {
        try outOfBand12 { api, handle in
            try withJSON(arguments) { json in
                withBuf(namespace) { ns in withBuf(channel ?? "") { ch in withBuf(event) { api.pointee.oob_emit!(handle, ns, ch, $0, json, nil, 0) } } }
            }
        }
    }

    /// Any event to one socket by id, out of band (ABI 1.2).
    public static func emit(_ event: String, _ arguments: Any..., toSocket id: String, namespace: String = "/") throws {
        try emit(event, arguments: arguments, toSocket: id, namespace: namespace)
    }

    static func emit(_ event: String, arguments: [Any], toSocket id: String, namespace: String) throws {
        try outOfBand12 { api, handle in
            try withJSON(arguments) { json in
                withBuf(namespace) { ns in withBuf(id) { sid in withBuf(event) { api.pointee.oob_emit_to_socket!(handle, ns, sid, $0, json, nil, 0) } } }
            }
        }
    }

    private static func outOfBand12(_ body: (UnsafePointer<sio_host_api>, OpaquePointer?) throws -> sio_status) throws {
        guard let plugin = current, let api = plugin.api else { throw SioError.notLoaded }
        guard api.pointee.struct_size > MemoryLayout<sio_host_api>.offset(of: \.oob_emit_to_socket)! else { throw SioError.unsupported }
        try SioError.check(try body(api, plugin.handle))
    }

    private static func outOfBand(_ body: (UnsafePointer<sio_host_api>, OpaquePointer?) throws -> sio_status) throws {
        guard let plugin = current, let api = plugin.api else { throw SioError.notLoaded }
        try SioError.check(try body(api, plugin.handle))
    }
}

private func pluginInit(_ api: UnsafePointer<sio_host_api>?, _ handle: OpaquePointer?, _ state: sio_buf) -> sio_status {
    guard let plugin = Plugin.current, let api else { return SIO_FAIL }
    plugin.api = api
    plugin.handle = handle
    for (index, registration) in plugin.registrations.enumerated() {
        let userData = UnsafeMutableRawPointer(bitPattern: index + 1)
        let status: sio_status
        if let pattern = registration.pattern {
            status = pattern.withCString { api.pointee.register_handler!(handle, registration.kind, $0, dispatchEvent, userData) }
        } else {
            status = api.pointee.register_handler!(handle, registration.kind, nil, dispatchEvent, userData)
        }
        guard status == SIO_OK else { return status }
    }
    return SIO_OK
}

/// The predecessor's state arrives here (ABI 1.1), after this version's init succeeded and the
/// predecessor stopped: the SDK's plugins are always initialised while the old version serves.
private func pluginAdopt(_ handle: OpaquePointer?, _ state: sio_buf) {
    guard let restore = Plugin.current?.restore else { return }
    restore(state.len > 0 ? Array(UnsafeRawBufferPointer(start: state.ptr, count: state.len)) : [])
}

/// Keeps the last retire state alive until the host has copied it (before its next call).
nonisolated(unsafe) private var retiredState: [UInt8] = []

private func pluginRetire(_ handle: OpaquePointer?) -> sio_buf {
    guard let retire = Plugin.current?.retire else { return sio_buf(ptr: nil, len: 0) }
    retiredState = retire()
    return retiredState.withUnsafeBufferPointer { buffer in
        sio_buf(ptr: buffer.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, len: buffer.count)
    }
}

private func dispatchEvent(_ event: UnsafePointer<sio_event>?, _ userData: UnsafeMutableRawPointer?) -> sio_status {
    guard let event, let plugin = Plugin.current, let api = plugin.api else { return SIO_FAIL }
    let index = Int(bitPattern: userData) - 1
    guard plugin.registrations.indices.contains(index) else { return SIO_FAIL }
    let handler = plugin.registrations[index].handler
    if let later = handler.later { return Plugin.start(later, event: event, api: api) }
    let socket = Socket(event: event, api: api)
    do {
        try handler.call(event.pointee, socket)
        return SIO_OK
    } catch let refusal as Refuse {
        withBuf(refusal.reason) { _ = api.pointee.set_reason!(event.pointee.socket, $0) }
        return SIO_REFUSE
    } catch {
        withBuf(String(describing: error)) { _ = api.pointee.set_reason!(event.pointee.socket, $0) }
        return SIO_FAIL
    }
}
