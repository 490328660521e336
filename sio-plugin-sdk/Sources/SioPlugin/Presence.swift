import CSioPlugin
import Foundation

/// One socket in a channel, on any node of the cluster, with the value its plugin set.
public struct PresenceMember: Sendable, Equatable, Decodable {
    public var id: String
    public var value: String?
}

/// Presence (ABI 1.4): who is in a channel across the cluster (`sio serve --cluster`; this
/// process alone without it). Each throws `SioError.unsupported` on an older host.
extension Socket {
    /// This socket's presence value, seen by every node (at most 256 bytes; nil clears it).
    public func setPresence(_ value: String?) throws {
        try Self.require14(api)
        try SioError.check(withBuf(value ?? "") { api.pointee.presence_set!(handle, $0) })
    }

    /// The sockets of `channel` (nil: of this socket's namespace) on every node, this node's first.
    public func presence(channel: String? = nil) throws -> [PresenceMember] {
        try Self.require14(api)
        var out = sio_buf(ptr: nil, len: 0)
        try SioError.check(withBuf(channel ?? "") { api.pointee.presence_list!(handle, $0, &out, nil) })
        return try JSONDecoder().decode([PresenceMember].self, from: Data(out.bytes))
    }

    static func require14(_ api: UnsafePointer<sio_host_api>) throws {
        guard api.pointee.struct_size > MemoryLayout<sio_host_api>.offset(of: \.presence_set)! else { throw SioError.unsupported }
    }
}

/// Out of band, any thread: presence counts and socket.io's `socketsJoin`, `socketsLeave` and
/// `disconnectSockets` for one socket by id, on whichever node has it (`SioError.noSocket` when
/// none has).
extension Plugin {
    /// How many sockets are in `channel` (nil: in the namespace) on every node.
    public static func presenceCount(channel: String? = nil, namespace: String = "/") throws -> Int {
        var count = 0
        try outOfBand14 { api, handle in
            withBuf(namespace) { ns in withBuf(channel ?? "") { api.pointee.oob_presence_count!(handle, ns, $0, &count) } }
        }
        return count
    }

    public static func join(socket id: String, channel: String, namespace: String = "/") throws {
        try outOfBand14 { api, handle in
            withBuf(namespace) { ns in withBuf(id) { sid in withBuf(channel) { api.pointee.oob_socket_join!(handle, ns, sid, $0) } } }
        }
    }

    public static func leave(socket id: String, channel: String, namespace: String = "/") throws {
        try outOfBand14 { api, handle in
            withBuf(namespace) { ns in withBuf(id) { sid in withBuf(channel) { api.pointee.oob_socket_leave!(handle, ns, sid, $0) } } }
        }
    }

    public static func disconnect(socket id: String, namespace: String = "/") throws {
        try outOfBand14 { api, handle in
            withBuf(namespace) { ns in withBuf(id) { api.pointee.oob_socket_disconnect!(handle, ns, $0) } }
        }
    }

    private static func outOfBand14(_ body: (UnsafePointer<sio_host_api>, OpaquePointer?) throws -> sio_status) throws {
        guard let plugin = current, let api = plugin.api else { throw SioError.notLoaded }
        try Socket.require14(api)
        try SioError.check(try body(api, plugin.handle))
    }
}
