import NIOCore
import PostgresNIO
import SocketIOServer

/// What goes through the two connections.
extension PostgresCluster {
    /// Notifications sent in one round trip, at most: one statement, `pg_notify` per payload.
    /// A round trip carries one notification (about 8 KB) per call, so the cross-node ceiling is
    /// this many times what one NOTIFY per round trip gives.
    static let notificationsPerRoundTrip = 16

    /// Sends batches while there are any; sleeps on the doorbell otherwise. Ends (the session
    /// with it) once the node stops and its goodbye went out.
    func publishLoop(_ connection: PostgresConnection, bell: AsyncStream<Void>) async throws {
        for await _ in bell {
            var payloads: [String] = []
            while let batch = state.withLockedValue({ $0.queue.next() }) {
                switch batch {
                case .notify(let payload):
                    payloads.append(payload)
                    if payloads.count == Self.notificationsPerRoundTrip {
                        try await notify(payloads, on: connection)
                        payloads.removeAll(keepingCapacity: true)
                    }
                case .table(let rows):
                    // What was taken before goes first: order is kept.
                    try await notify(payloads, on: connection)
                    payloads.removeAll(keepingCapacity: true)
                    let query: PostgresQuery = "INSERT INTO \(unescaped: configuration.payloadTable) (data) VALUES (\(rows)) RETURNING id"
                    var id: Int64?
                    for try await row in try await connection.query(query, logger: logger).decode(Int64.self) { id = row }
                    guard let id else { continue }
                    var reference = ByteBuffer(string: state.withLockedValue { $0.queue.header() })
                    ClusterWire.encode(.reference(id), into: &reference)
                    try await notify([String(buffer: reference)], on: connection)
                    state.withLockedValue { $0.rows += 1 }
                }
            }
            try await notify(payloads, on: connection)
        }
    }

    private func notify(_ payloads: [String], on connection: PostgresConnection) async throws {
        guard !payloads.isEmpty else { return }
        var bindings = PostgresBindings(capacity: payloads.count + 1)
        bindings.append(configuration.channel)
        var sql = "SELECT "
        for (index, payload) in payloads.enumerated() {
            bindings.append(payload)
            sql += index == 0 ? "pg_notify($1, $2)" : ", pg_notify($1, $\(index + 2))"
        }
        try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        state.withLockedValue { $0.notifications += payloads.count }
    }

    /// Says this node is alive, forgets nodes that stopped saying so, and deletes old table rows.
    func heartbeatLoop(_ connection: PostgresConnection) async throws {
        var beats = 0
        let retentionSeconds = Int(configuration.payloadRetention.components.seconds)
        while true {
            enqueue(.heartbeat, always: true)
            let now = NIODeadline.now().uptimeNanoseconds
            let timeout = UInt64(configuration.nodeTimeout.components.seconds) * 1_000_000_000
                + UInt64(configuration.nodeTimeout.components.attoseconds / 1_000_000_000)
            let gone = state.withLockedValue { $0.presence.expire(notHeardSince: now > timeout ? now - timeout : 0) }
            for node in gone {
                logger.warning("cluster: node fell silent; its sockets left presence", metadata: ["peer": "\(node)"])
            }
            beats += 1
            if beats % 10 == 0 {
                let delete: PostgresQuery = """
                    DELETE FROM \(unescaped: configuration.payloadTable) \
                    WHERE created_at < now() - make_interval(secs => \(retentionSeconds))
                    """
                try await connection.query(delete, logger: logger)
            }
            try await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// One notification: messages of another node, applied in order (a table row's before what
    /// follows it).
    func receive(_ payload: String, fetcher: PostgresConnection) async {
        let node: String
        let messages: [WireMessage]
        do {
            (node, _, messages) = try ClusterWire.decodeNotification(payload)
        } catch {
            logger.warning("cluster: malformed notification ignored", metadata: ["error": "\(error)", "bytes": "\(payload.utf8.count)"])
            return
        }
        guard node != nodeID else { return }
        for message in messages {
            guard case .reference(let id) = message else {
                handle(message, from: node)
                continue
            }
            do {
                var data: ByteBuffer?
                let query: PostgresQuery = "SELECT data FROM \(unescaped: configuration.payloadTable) WHERE id = \(id)"
                for try await row in try await fetcher.query(query, logger: logger).decode(ByteBuffer.self) { data = row }
                guard let data else {
                    logger.warning("cluster: payload row gone before it was read", metadata: ["peer": "\(node)", "row": "\(id)"])
                    continue
                }
                for inner in try ClusterWire.decode(data) { handle(inner, from: node) }
            } catch {
                logger.warning("cluster: payload row unreadable", metadata: ["peer": "\(node)", "row": "\(id)", "error": "\(error)"])
            }
        }
    }

    func handle(_ message: WireMessage, from node: String) {
        let now = NIODeadline.now().uptimeNanoseconds
        let (isNew, endpoint) = state.withLockedValue { state in
            state.received += 1
            let isNew = state.presence.heard(node, at: now)
            switch message {
            case .presence(let change): state.presence.apply(change, from: node)
            case .snapshotBegin: state.presence.clear(node)
            case .snapshot(let members): state.presence.replace(members, from: node)
            case .bye: state.presence.forget(node)
            case .message, .heartbeat, .hello, .snapshotRequest, .reference, .direct: break
            }
            return (isNew, state.endpoint)
        }
        switch message {
        case .message(let message), .direct(nodeID, .message(let message)):
            endpoint?.deliver(message, from: node)
        case .hello:
            logger.info("cluster: node joined", metadata: ["peer": "\(node)"])
            enqueueSnapshot()
        case .snapshotRequest(let target) where target == nodeID:
            enqueueSnapshot()
        case .bye:
            logger.info("cluster: node left", metadata: ["peer": "\(node)"])
        default:
            break
        }
        // Heard before its hello (this node came back, or missed it): ask for its members.
        if isNew, message != .hello, message != .snapshotBegin, message != .bye {
            enqueue(.snapshotRequest(node: node), always: true)
        }
    }
}
