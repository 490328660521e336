import NIOCore
import SocketIOCodec

/// A client that came back to this node for a socket away on another, waiting for its answer.
struct PendingClaim: Sendable {
    let socket: Socket
    let node: String
    let auth: JSONValue?
}

/// Connection state recovery across the nodes of a cluster (docs/events.md, "Recovery"): the
/// node a client comes back to asks the node that has its socket for it, through the cluster.
extension ServerContext {
    /// A client of `node` came back with the private id of a socket away here: what it was
    /// sent goes there, and the socket ends here (the application hears the end it would have
    /// heard past the window).
    func answerClaim(namespace: String, socket id: String, pid: String, offset: String, from node: String) {
        guard let cluster else { return }
        let old = recoverable.withLockedValue { table -> Socket? in
            guard let socket = table[pid], socket.id == id, socket.namespace == namespace else { return nil }
            return table.removeValue(forKey: pid)
        }
        guard let old else {
            cluster.send(.recoveryAnswer(pid: pid, nil), to: node)
            return
        }
        old.eventLoop.execute {
            let state = old.moveAway(offset: RecoverySettings.parse(offset), localNode: cluster.nodeID)
            cluster.send(.recoveryAnswer(pid: pid, state), to: node)
        }
    }

    /// The node asked for `pid` answered: only the node that was asked counts.
    func claimAnswered(pid: String, _ state: RecoveredSocket?, from node: String) {
        let claim = claims.withLockedValue { table -> PendingClaim? in
            guard table[pid]?.node == node else { return nil }
            return table.removeValue(forKey: pid)
        }
        guard let claim else { return }
        claim.socket.eventLoop.execute {
            claim.socket.session.socketIO.completeRemoteRecovery(claim.socket, state, auth: claim.auth)
        }
    }
}
