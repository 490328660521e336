import SocketIOServer

/// Who is where on the other nodes: built from their snapshots and changes, forgotten when a
/// node says goodbye or falls silent for longer than the node timeout.
///
/// Pure: no I/O, no clock (callers pass the time), no lock (the owner holds one).
struct RemotePresence {
    private struct SocketKey: Hashable {
        var namespace: String
        var socket: String
    }

    private struct ChannelKey: Hashable {
        var namespace: String
        var channel: String
    }

    private struct Entry {
        var channels: Set<String> = []
        var value: String?
        var pid: String?
    }

    private struct Node {
        var lastHeard: UInt64
        var sockets: [SocketKey: Entry] = [:]
        var channels: [ChannelKey: Set<String>] = [:]
        /// Sockets away, by private id.
        var away: [String: SocketKey] = [:]

        mutating func setAway(_ key: SocketKey, _ pid: String?) {
            guard sockets[key] != nil else { return }
            if let old = sockets[key]!.pid { away.removeValue(forKey: old) }
            sockets[key]!.pid = pid
            if let pid { away[pid] = key }
        }

        mutating func join(_ key: SocketKey, _ channel: String) {
            sockets[key, default: Entry()].channels.insert(channel)
            channels[ChannelKey(namespace: key.namespace, channel: channel), default: []].insert(key.socket)
        }

        mutating func leave(_ key: SocketKey, _ channel: String) {
            sockets[key]?.channels.remove(channel)
            let channelKey = ChannelKey(namespace: key.namespace, channel: channel)
            channels[channelKey]?.remove(key.socket)
            if channels[channelKey]?.isEmpty == true { channels.removeValue(forKey: channelKey) }
        }

        mutating func remove(_ key: SocketKey) {
            guard let entry = sockets.removeValue(forKey: key) else { return }
            if let pid = entry.pid { away.removeValue(forKey: pid) }
            for channel in entry.channels {
                let channelKey = ChannelKey(namespace: key.namespace, channel: channel)
                channels[channelKey]?.remove(key.socket)
                if channels[channelKey]?.isEmpty == true { channels.removeValue(forKey: channelKey) }
            }
        }
    }

    private var nodes: [String: Node] = [:]

    var nodeIDs: [String] { nodes.keys.sorted() }
    var isAlone: Bool { nodes.isEmpty }

    /// Records that `node` was heard at `now`: true when it was not known before.
    @discardableResult
    mutating func heard(_ node: String, at now: UInt64) -> Bool {
        if nodes[node] != nil {
            nodes[node]!.lastHeard = max(nodes[node]!.lastHeard, now)
            return false
        }
        nodes[node] = Node(lastHeard: now)
        return true
    }

    mutating func apply(_ change: PresenceChange, from node: String) {
        guard nodes[node] != nil else { return }
        switch change {
        case .connected(let namespace, let socket):
            let key = SocketKey(namespace: namespace, socket: socket)
            if nodes[node]!.sockets[key] == nil { nodes[node]!.sockets[key] = Entry() }
        case .disconnected(let namespace, let socket):
            nodes[node]!.remove(SocketKey(namespace: namespace, socket: socket))
        case .joined(let namespace, let socket, let channel):
            nodes[node]!.join(SocketKey(namespace: namespace, socket: socket), channel)
        case .left(let namespace, let socket, let channel):
            nodes[node]!.leave(SocketKey(namespace: namespace, socket: socket), channel)
        case .value(let namespace, let socket, let value):
            nodes[node]!.sockets[SocketKey(namespace: namespace, socket: socket)]?.value = value
        case .away(let namespace, let socket, let pid):
            nodes[node]!.setAway(SocketKey(namespace: namespace, socket: socket), pid)
        }
    }

    /// A snapshot starts: what was known of the node is stale.
    mutating func clear(_ node: String) {
        guard nodes[node] != nil else { return }
        nodes[node]!.sockets = [:]
        nodes[node]!.channels = [:]
        nodes[node]!.away = [:]
    }

    /// One namespace of a node's snapshot.
    mutating func replace(_ snapshot: NamespaceMembers, from node: String) {
        guard nodes[node] != nil else { return }
        for key in nodes[node]!.sockets.keys where key.namespace == snapshot.namespace {
            nodes[node]!.remove(key)
        }
        for member in snapshot.members {
            let key = SocketKey(namespace: snapshot.namespace, socket: member.id)
            nodes[node]!.sockets[key] = Entry(value: member.value)
            nodes[node]!.setAway(key, member.pid)
            for channel in member.channels { nodes[node]!.join(key, channel) }
        }
    }

    mutating func forget(_ node: String) {
        nodes.removeValue(forKey: node)
    }

    /// Forgets the nodes not heard from since `deadline`: their ids.
    mutating func expire(notHeardSince deadline: UInt64) -> [String] {
        let gone = nodes.filter { $0.value.lastHeard < deadline }.map(\.key).sorted()
        for node in gone { nodes.removeValue(forKey: node) }
        return gone
    }

    func members(namespace: String, channel: String?) -> [PresenceMember] {
        var members: [PresenceMember] = []
        for (id, node) in nodes {
            if let channel {
                for socket in node.channels[ChannelKey(namespace: namespace, channel: channel)] ?? [] {
                    let value = node.sockets[SocketKey(namespace: namespace, socket: socket)]?.value
                    members.append(PresenceMember(id: socket, namespace: namespace, node: id, value: value))
                }
            } else {
                for (key, entry) in node.sockets where key.namespace == namespace {
                    members.append(PresenceMember(id: key.socket, namespace: namespace, node: id, value: entry.value))
                }
            }
        }
        return members
    }

    func channelCounts(namespace: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes.values {
            for (key, sockets) in node.channels where key.namespace == namespace {
                counts[key.channel, default: 0] += sockets.count
            }
        }
        return counts
    }

    func hasSocket(_ socket: String, namespace: String) -> Bool {
        let key = SocketKey(namespace: namespace, socket: socket)
        return nodes.values.contains { $0.sockets[key] != nil }
    }

    /// The socket away with this private id, and the node that has it.
    func awaySocket(pid: String) -> AwaySocket? {
        for (id, node) in nodes {
            guard let key = node.away[pid], let entry = node.sockets[key] else { continue }
            return AwaySocket(node: id, namespace: key.namespace, id: key.socket, channels: entry.channels.sorted())
        }
        return nil
    }

    /// How many sockets other nodes have, for operators.
    var socketCount: Int { nodes.values.reduce(0) { $0 + $1.sockets.count } }
}
