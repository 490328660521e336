import Atomics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The connected sockets of one namespace and the channels they are in.
///
/// Shared across event loops because a broadcast reaches sockets on every loop. Changes
/// (connect, join, leave, finish) take the lock and bump `version`; a broadcast takes the lock
/// only when the membership changed since its thread last looked: each thread keeps the
/// recipient lists it read with the version it read them at (`RecipientCache`), so a steady
/// channel is broadcast to without a lock.
final class NamespaceRegistry: Sendable {
    let name: String

    private struct State: Sendable {
        var byID: [String: Socket] = [:]
        var all = IdentitySet<Socket>()
        var channels: [String: IdentitySet<Socket>] = [:]
        /// Presence values set by the application, by socket id.
        var values: [String: String] = [:]
        /// The private ids of sockets away (recoverable), by socket id: what the cluster needs
        /// to find them when their client comes back to another node.
        var away: [String: String] = [:]
    }

    private let state = NIOLockedValueBox(State())
    /// With recovery: each channel's recent broadcasts, kept once for all its subscribers.
    private let histories = NIOLockedValueBox<(byChannel: [String: ChannelHistory], made: Int)>(([:], 0))
    /// Bumped, under the lock, by every change of who is in the namespace or a channel.
    private let version = ManagedAtomic<UInt64>(1)

    /// The cluster, told of every change inside the lock (see `ClusterLink`); nil alone.
    private let cluster: (any ClusterLink)?

    init(name: String, cluster: (any ClusterLink)? = nil) {
        self.name = name
        self.cluster = cluster
    }

    private func change(_ presence: @autoclosure () -> PresenceChange, _ body: (inout State) -> Void) {
        state.withLockedValue { state in
            body(&state)
            version.wrappingIncrement(ordering: .releasing)
            if let cluster { cluster.presenceChanged(presence()) }
        }
    }

    func add(_ socket: Socket) {
        change(.connected(namespace: name, socket: socket.id)) {
            $0.byID[socket.id] = socket
            $0.all.insert(socket)
        }
    }

    func remove(_ socket: Socket) {
        change(.disconnected(namespace: name, socket: socket.id)) {
            _ = $0.byID.removeValue(forKey: socket.id)
            $0.all.remove(socket)
            $0.values.removeValue(forKey: socket.id)
            $0.away.removeValue(forKey: socket.id)
        }
    }

    /// A socket's transport is lost and its client may come back with `pid`; nil: no longer.
    func setAway(_ id: String, pid: String?) {
        change(.away(namespace: name, socket: id, pid: pid)) { $0.away[id] = pid }
    }

    /// A recovered socket takes the place of the one whose transport was lost: same id, same
    /// channels, nothing for the cluster to hear.
    func replace(_ old: Socket, with new: Socket, channels: Set<String>) {
        state.withLockedValue { state in
            state.byID[new.id] = new
            if state.away.removeValue(forKey: new.id) != nil {
                cluster?.presenceChanged(.away(namespace: name, socket: new.id, pid: nil))
            }
            state.all.remove(old)
            state.all.insert(new)
            for channel in channels {
                state.channels[channel]?.remove(old)
                state.channels[channel, default: IdentitySet<Socket>()].insert(new)
            }
            version.wrappingIncrement(ordering: .releasing)
        }
    }

    /// Sets (nil: clears) the presence value of a connected socket; false when it is not.
    func setValue(_ value: String?, of id: String) -> Bool {
        state.withLockedValue { state in
            guard state.byID[id] != nil else { return false }
            state.values[id] = value
            cluster?.presenceChanged(.value(namespace: name, socket: id, value))
            return true
        }
    }

    func value(of id: String) -> String? {
        state.withLockedValue { $0.values[id] }
    }

    /// This process's sockets (in `channel`, when given), with their presence values.
    func members(channel: String?) -> [PresenceMember] {
        state.withLockedValue { state in
            let sockets = channel.map { state.channels[$0]?.members ?? [] } ?? state.all.members
            return sockets.map { PresenceMember(id: $0.id, namespace: name, node: nil, value: state.values[$0.id]) }
        }
    }

    /// Every member with its channels, handed to `body` under the lock.
    func withMembers(_ body: (NamespaceMembers) -> Void) {
        state.withLockedValue { state in
            var channelsOf: [String: [String]] = [:]
            for (channel, sockets) in state.channels {
                for socket in sockets.members { channelsOf[socket.id, default: []].append(channel) }
            }
            let members = state.byID.keys.sorted().map {
                NamespaceMembers.Member(id: $0, channels: channelsOf[$0]?.sorted() ?? [], value: state.values[$0],
                                        pid: state.away[$0])
            }
            body(NamespaceMembers(namespace: name, members: members))
        }
    }

    func socket(_ id: String) -> Socket? {
        state.withLockedValue { $0.byID[id] }
    }

    func join(_ socket: Socket, channel: String) {
        socket.noteJoined(channel)
        change(.joined(namespace: name, socket: socket.id, channel: channel)) {
            $0.channels[channel, default: IdentitySet<Socket>()].insert(socket)
        }
    }

    func leave(_ socket: Socket, channel: String) {
        change(.left(namespace: name, socket: socket.id, channel: channel)) { state in
            state.channels[channel]?.remove(socket)
            if state.channels[channel]?.isEmpty == true { state.channels.removeValue(forKey: channel) }
        }
    }

    /// The history of `channel`, made on its first broadcast. Every so many made, those with
    /// nothing younger than two windows go: no away socket can need them.
    func history(_ channel: String, _ settings: RecoverySettings) -> ChannelHistory {
        histories.withLockedValue { histories in
            if let history = histories.byChannel[channel] { return history }
            histories.made += 1
            if histories.made % 256 == 0 {
                let now = NIODeadline.now().uptimeNanoseconds
                let deadline = now > 2 * settings.windowNanoseconds ? now - 2 * settings.windowNanoseconds : 0
                histories.byChannel = histories.byChannel.filter { !$0.value.isStale(before: deadline) }
            }
            let history = ChannelHistory(settings)
            histories.byChannel[channel] = history
            return history
        }
    }

    func existingHistory(_ channel: String) -> ChannelHistory? {
        histories.withLockedValue { $0.byChannel[channel] }
    }

    var allSockets: ContiguousArray<Socket> {
        recipients(channel: nil) { $0.all.members }
    }

    /// Subscribers of any of `channels`, each once.
    func subscribers(of channels: [String]) -> ContiguousArray<Socket> {
        if channels.count == 1 {
            return recipients(channel: channels[0]) { $0.channels[channels[0]]?.members ?? [] }
        }
        return state.withLockedValue { state in
            var seen = IdentitySet<Socket>()
            for channel in channels {
                for socket in state.channels[channel]?.members ?? [] { seen.insert(socket) }
            }
            return seen.members
        }
    }

    /// The members of `channel` (nil: the whole namespace), from this thread's cache when
    /// nothing changed since it was filled.
    private func recipients(channel: String?, read: (State) -> ContiguousArray<Socket>) -> ContiguousArray<Socket> {
        let cache = RecipientCache.current
        let key = RecipientCache.Key(registry: ObjectIdentifier(self), channel: channel)
        let current = version.load(ordering: .acquiring)
        if let entry = cache.entries[key], entry.version == current { return entry.members }
        let (members, readAt) = state.withLockedValue { (read($0), version.load(ordering: .relaxed)) }
        cache.store(key, version: readAt, members: members)
        return members
    }

    var count: Int { state.withLockedValue { $0.byID.count } }

    /// Each channel with its member count, for operators.
    var channelCounts: [String: Int] {
        state.withLockedValue { $0.channels.mapValues { $0.members.count } }
    }
}

/// One thread's recipient lists, each with the registry version it was read at.
///
/// `@unchecked Sendable` only to live in a `ThreadSpecificVariable`: each thread has its own,
/// and no other thread ever sees it.
final class RecipientCache: @unchecked Sendable {
    struct Key: Hashable {
        var registry: ObjectIdentifier
        var channel: String?
    }

    private(set) var entries: [Key: (version: UInt64, members: ContiguousArray<Socket>)] = [:]
    /// Lists kept per thread. A list holds its sockets until it is replaced, so the cache is
    /// emptied whenever it fills rather than growing with every channel ever broadcast to.
    private static let capacity = 256

    private static let perThread = ThreadSpecificVariable<RecipientCache>()

    static var current: RecipientCache {
        if let cache = perThread.currentValue { return cache }
        let cache = RecipientCache()
        perThread.currentValue = cache
        return cache
    }

    func store(_ key: Key, version: UInt64, members: ContiguousArray<Socket>) {
        if entries.count >= Self.capacity, entries[key] == nil { entries.removeAll(keepingCapacity: true) }
        entries[key] = (version, members)
    }
}
