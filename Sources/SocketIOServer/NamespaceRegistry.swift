import NIOConcurrencyHelpers

/// The connected sockets of one namespace and the channels they are in.
///
/// Shared across event loops because a broadcast reaches sockets on every loop; the lock is
/// held only to copy out the recipients, never while sending.
final class NamespaceRegistry: @unchecked Sendable {
    let name: String

    private struct State {
        var sockets: [String: SocketIOSocket] = [:]
        var channels: [String: [String: SocketIOSocket]] = [:]
    }

    private let state = NIOLockedValueBox(State())

    init(name: String) {
        self.name = name
    }

    func add(_ socket: SocketIOSocket) {
        state.withLockedValue { $0.sockets[socket.id] = socket }
    }

    func remove(_ socket: SocketIOSocket) {
        state.withLockedValue { _ = $0.sockets.removeValue(forKey: socket.id) }
    }

    func socket(_ id: String) -> SocketIOSocket? {
        state.withLockedValue { $0.sockets[id] }
    }

    func join(_ socket: SocketIOSocket, channel: String) {
        state.withLockedValue { $0.channels[channel, default: [:]][socket.id] = socket }
    }

    func leave(_ socket: SocketIOSocket, channel: String) {
        state.withLockedValue { state in
            state.channels[channel]?.removeValue(forKey: socket.id)
            if state.channels[channel]?.isEmpty == true { state.channels.removeValue(forKey: channel) }
        }
    }

    var allSockets: [SocketIOSocket] {
        state.withLockedValue { Array($0.sockets.values) }
    }

    /// Subscribers of any of `channels`, each once.
    func subscribers(of channels: [String]) -> [SocketIOSocket] {
        state.withLockedValue { state in
            if channels.count == 1 { return Array((state.channels[channels[0]] ?? [:]).values) }
            var seen: [String: SocketIOSocket] = [:]
            for channel in channels {
                for (id, socket) in state.channels[channel] ?? [:] { seen[id] = socket }
            }
            return Array(seen.values)
        }
    }

    var count: Int { state.withLockedValue { $0.sockets.count } }
}
