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
    let broadcasts: Counter
    let deliveries: Counter
    private let handshakes: [Counter]
    private let disconnects: [Counter]

    // Folded in from the loops' counters.
    let unicasts: Counter
    let bytesReceived: Counter
    let bytesSent: Counter
    let packetsReceived: [Counter]

    // Read when collected.
    private let connections: [Gauge]
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

        init(_ namespace: String, factory: any MetricsFactory) {
            sockets = Gauge(label: "sio_sockets", dimensions: [("namespace", namespace)], factory: factory)
            channels = Gauge(label: "sio_channels", dimensions: [("namespace", namespace)], factory: factory)
            subscriptions = Gauge(label: "sio_subscriptions", dimensions: [("namespace", namespace)], factory: factory)
        }
    }

    /// `factory`: the bootstrapped backend; tests pass their own.
    init(namespaces: some Sequence<String>, factory: any MetricsFactory = MetricsSystem.factory) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        broadcasts = counter("sio_messages_sent_total", [("to", "many")])
        unicasts = counter("sio_messages_sent_total", [("to", "one")])
        deliveries = counter("sio_deliveries_total")
        handshakes = ["polling", "websocket"].map { counter("sio_handshakes_total", [("transport", $0)]) }
        disconnects = DisconnectReason.allCases.map { counter("sio_disconnects_total", [("reason", $0.rawValue)]) }
        bytesReceived = counter("sio_received_bytes_total")
        bytesSent = counter("sio_sent_bytes_total")
        packetsReceived = ReceivedKind.allCases.map { counter("sio_packets_received_total", [("kind", $0.rawValue)]) }
        connections = ["polling", "websocket"].map { Gauge(label: "sio_connections", dimensions: [("transport", $0)], factory: factory) }
        self.namespaces = Dictionary(uniqueKeysWithValues: namespaces.map { ($0, NamespaceGauges($0, factory: factory)) })
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
            let counted = await LoopQuery.ask(loop) { [self] in
                counters.fold(into: self)
                let webSockets = sessions.lazy.filter { $0.transportName == "websocket" }.count
                return (webSockets, sessions.count - webSockets)
            }
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
