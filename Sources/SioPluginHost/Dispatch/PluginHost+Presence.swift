import CSioPlugin
import SocketIOCodec
import SocketIOServer

/// Presence and the operations on any socket of the cluster by id (ABI 1.4), shared by the
/// in-process table and the calls isolated runners forward.
extension PluginHost {
    /// The most bytes of one presence value: it is copied to every node.
    static let maxPresenceValueBytes = 256

    func setPresence(_ value: [UInt8], socket: Socket) -> sio_status {
        guard value.count <= Self.maxPresenceValueBytes else { return SIO_ERR_INVALID }
        let text: String?
        if value.isEmpty {
            text = nil
        } else {
            guard let valid = value.withUnsafeBytes({ UTF8Text.string($0) }) else { return SIO_ERR_INVALID }
            text = valid
        }
        guard let server = attached.load() else { return SIO_ERR_STATE }
        return server.setPresence(text, socketID: socket.id, namespace: socket.namespace) ? SIO_OK : SIO_ERR_STATE
    }

    /// The members of `channel` (nil: the namespace) on every node, as the JSON `presence_list`
    /// hands out, and how many.
    func presenceJSON(namespace: String, channel: String?) -> (json: String, count: Int) {
        let members = attached.load()?.presence(namespace: namespace, channel: channel) ?? []
        let list = JSONValue.array(members.map { ["id": .string($0.id), "value": $0.value.map(JSONValue.string) ?? .null] })
        return (list.jsonText, members.count)
    }

    func presenceCount(namespace: String, channel: String?) -> Int {
        attached.load()?.presence(namespace: namespace, channel: channel).count ?? 0
    }

    func operateOnSocket(_ operation: SocketOperation, namespace: String, socketID: String) -> sio_status {
        guard let server = attached.load() else { return SIO_ERR_NO_SOCKET }
        return server.perform(operation, onSocket: socketID, namespace: namespace) ? SIO_OK : SIO_ERR_NO_SOCKET
    }
}
