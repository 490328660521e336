import NIOConcurrencyHelpers

/// The connected sockets of one namespace and the channels they are in.
///
/// Shared across event loops because a broadcast reaches sockets on every loop; the lock is
/// held only to take the recipients, never while sending.
final class NamespaceRegistry: @unchecked Sendable {
    let name: String

    private struct State {
        var byID: [String: Socket] = [:]
        var all = IdentitySet<Socket>()
        var channels: [String: IdentitySet<Socket>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    init(name: String) {
        self.name = name
    }

    func add(_ socket: Socket) {
        state.withLockedValue {
            $0.byID[socket.id] = socket
            $0.all.insert(socket)
        }
    }

    func remove(_ socket: Socket) {
        state.withLockedValue {
            _ = $0.byID.removeValue(forKey: socket.id)
            $0.all.remove(socket)
        }
    }

    func socket(_ id: String) -> Socket? {
        state.withLockedValue { $0.byID[id] }
    }

    func join(_ socket: Socket, channel: String) {
        state.withLockedValue { $0.channels[channel, default: IdentitySet<Socket>()].insert(socket) }
    }

    func leave(_ socket: Socket, channel: String) {
        state.withLockedValue { state in
            state.channels[channel]?.remove(socket)
            if state.channels[channel]?.isEmpty == true { state.channels.removeValue(forKey: channel) }
        }
    }

    var allSockets: ContiguousArray<Socket> {
        state.withLockedValue { $0.all.members }
    }

    /// Subscribers of any of `channels`, each once.
    func subscribers(of channels: [String]) -> ContiguousArray<Socket> {
        state.withLockedValue { state in
            if channels.count == 1 { return state.channels[channels[0]]?.members ?? [] }
            var seen = IdentitySet<Socket>()
            for channel in channels {
                for socket in state.channels[channel]?.members ?? [] { seen.insert(socket) }
            }
            return seen.members
        }
    }

    var count: Int { state.withLockedValue { $0.byID.count } }
}
