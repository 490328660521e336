import CoreMetrics
import NIOConcurrencyHelpers
import NIOCore

/// The server's metrics, made through swift-metrics so that any backend can take them (`sio`
/// exports them to Prometheus at the admin endpoint's `/metrics`).
///
/// Nothing here costs a lock or an atomic per delivery. What happens per packet or per flush is
/// counted in plain integers on each event loop (`LoopCounters`) and added to these counters
/// when they are collected; a broadcast counts once, with its number of recipients; gauges are
/// read from the registries when collected. Created only when `ServerConfiguration.metrics`
/// is on.
final class ServerMetrics: Sendable {
    // Counted per broadcast or per rare event, straight into the backend.
    /// A message is one emit, to one socket or to many; a delivery is a message reaching one
    /// socket.
    let broadcasts = Counter(label: "sio_messages_sent_total", dimensions: [("to", "many")])
    let deliveries = Counter(label: "sio_deliveries_total")
    private let handshakes = [
        Counter(label: "sio_handshakes_total", dimensions: [("transport", "polling")]),
        Counter(label: "sio_handshakes_total", dimensions: [("transport", "websocket")]),
    ]
    private let disconnects = DisconnectReason.allCases.map {
        Counter(label: "sio_disconnects_total", dimensions: [("reason", $0.rawValue)])
    }

    // Folded in from the loops' counters.
    let unicasts = Counter(label: "sio_messages_sent_total", dimensions: [("to", "one")])
    let bytesReceived = Counter(label: "sio_received_bytes_total")
    let bytesSent = Counter(label: "sio_sent_bytes_total")
    let packetsReceived = ReceivedKind.allCases.map {
        Counter(label: "sio_packets_received_total", dimensions: [("kind", $0.rawValue)])
    }

    // Read when collected.
    private let connections = [
        Gauge(label: "sio_connections", dimensions: [("transport", "polling")]),
        Gauge(label: "sio_connections", dimensions: [("transport", "websocket")]),
    ]
    private let namespaces: [String: NamespaceGauges]

    private let loops = NIOLockedValueBox<[ObjectIdentifier: (EventLoop, LoopCounters)]>([:])

    /// What a client sent, by the handler event it leads to.
    enum ReceivedKind: String, CaseIterable {
        case connect, disconnect, message, subscribe, unsubscribe, ack
    }

    private struct NamespaceGauges {
        let sockets: Gauge
        let channels: Gauge
        let subscriptions: Gauge

        init(_ namespace: String) {
            sockets = Gauge(label: "sio_sockets", dimensions: [("namespace", namespace)])
            channels = Gauge(label: "sio_channels", dimensions: [("namespace", namespace)])
            subscriptions = Gauge(label: "sio_subscriptions", dimensions: [("namespace", namespace)])
        }
    }

    init(namespaces: some Sequence<String>) {
        self.namespaces = Dictionary(uniqueKeysWithValues: namespaces.map { ($0, NamespaceGauges($0)) })
    }

    /// The counters of `loop`, made on first use; once per session or connection, never per
    /// message. They are also folded in every second, for backends that are not polled.
    func counters(for loop: EventLoop) -> LoopCounters {
        loops.withLockedValue { loops in
            if let (_, counters) = loops[ObjectIdentifier(loop)] { return counters }
            let counters = LoopCounters()
            loops[ObjectIdentifier(loop)] = (loop, counters)
            loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in counters.fold(into: self) }
            return counters
        }
    }

    func handshake(webSocket: Bool) {
        handshakes[webSocket ? 1 : 0].increment()
    }

    func disconnected(_ reason: DisconnectReason) {
        if let index = DisconnectReason.allCases.firstIndex(of: reason) { disconnects[index].increment() }
    }

    /// Brings every counter and gauge up to date: each loop folds its own counters and counts
    /// its sessions by transport, on the loop.
    func collect(sessions: [EngineSession], namespaces registries: [String: NamespaceRegistry]) async {
        var byLoop: [ObjectIdentifier: (EventLoop, [EngineSession])] = [:]
        for session in sessions {
            byLoop[ObjectIdentifier(session.eventLoop), default: (session.eventLoop, [])].1.append(session)
        }
        var loops = self.loops.withLockedValue { $0 }
        for (key, (loop, _)) in byLoop where loops[key] == nil { loops[key] = (loop, counters(for: loop)) }
        var webSockets = 0, polling = 0
        for (key, (loop, counters)) in loops {
            let sessions = byLoop[key]?.1 ?? []
            let counted = try? await loop.submit { [self] in
                counters.fold(into: self)
                let webSockets = sessions.lazy.filter { $0.transportName == "websocket" }.count
                return (webSockets, sessions.count - webSockets)
            }.get()
            webSockets += counted?.0 ?? 0
            polling += counted?.1 ?? 0
        }
        connections[0].record(polling)
        connections[1].record(webSockets)
        for (name, gauges) in namespaces {
            guard let registry = registries[name] else { continue }
            let channels = registry.channelCounts
            gauges.sockets.record(registry.count)
            gauges.channels.record(channels.count)
            gauges.subscriptions.record(channels.values.reduce(0, +))
        }
    }
}
