import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// A Socket.IO load generator for any Engine.IO v4 / Socket.IO v5 server that follows the
/// channel contract (`__subscribe__` → room; a `message` with `{"ch": …}` relayed to the room),
/// over WebSocket or HTTP long-polling.
/// It runs on one event loop (pin it to a core) and prints one JSON line of results.
@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sio-load",
        abstract: "Load for Socket.IO servers: fan-out, many channels, idle connections, connect rate.",
        subcommands: [FanOut.self, ManyChannels.self, Idle.self, ConnectRate.self])
}

struct Target: ParsableArguments {
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port: Int
    @Option(help: "Engine.IO path.") var path = "/socket.io/"
    @Option(help: "Connections being opened at once.") var concurrency = 200
}

enum Transport: String, ExpressibleByArgument {
    case websocket
    case polling
}

/// The loop everything runs on, and the shared counters.
struct Harness {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var loop: EventLoop { group.next() }
    let stats = Stats()

    func connector(_ target: Target) throws -> Connector {
        try Connector(loop: loop, host: target.host, port: target.port, path: target.path)
    }

    func on<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        try await loop.submit(body).get()
    }

    func sleep(_ seconds: Double) async throws {
        try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    }

    /// What one measured period saw.
    struct Window {
        var seconds: Double
        var received: Int
        var sent: Int
        var cpuPercent: Double
    }

    /// One second of warm-up, then `duration` seconds measured; `stop` ends the load; then two
    /// seconds for what is still in flight.
    func measure(_ duration: Double, stop: @escaping @Sendable () -> Void) async throws -> Window {
        try await sleep(1)
        let start = try await on { () -> (Int, Int, Double, UInt64) in
            stats.measuring = true
            return (stats.received, stats.sent, ProcessCPU.seconds(), Clock.nanoseconds())
        }
        try await sleep(duration)
        let end = try await on { () -> (Int, Int, Double, UInt64) in
            stats.measuring = false
            stop()
            return (stats.received, stats.sent, ProcessCPU.seconds(), Clock.nanoseconds())
        }
        try await sleep(2)
        let seconds = Double(end.3 - start.3) / 1e9
        return Window(seconds: seconds, received: end.0 - start.0, sent: end.1 - start.1,
                      cpuPercent: (end.2 - start.2) / seconds * 100)
    }
}

/// Publishing at a rate by the clock, not by the tick count: a busy loop runs the ticks late.
struct Pacing {
    private var carry = 0.0
    private var lastTick = Clock.nanoseconds()
    /// Which client publishes next, for scenarios that take turns.
    var next = 0

    /// How many messages are due since the last call.
    mutating func due(perSecond: Double) -> Int {
        let now = Clock.nanoseconds()
        carry += perSecond * Double(now - lastTick) / 1e9
        lastTick = now
        let whole = Int(carry)
        carry -= Double(whole)
        return whole
    }
}

/// `{"ch":CHANNEL,"t":NANOSECONDS,"p":"xxx…"}` padded so that the JSON is about `size` bytes.
func messageText(channel: String, size: Int) -> (prefix: String, suffix: String) {
    let skeleton = "42[\"message\",{\"ch\":\"\(channel)\",\"t\":0000000000000000000,\"p\":\"\"}]"
    let pad = String(repeating: "x", count: max(0, size - (skeleton.count - 2)))
    return ("42[\"message\",{\"ch\":\"\(channel)\",\"t\":", ",\"p\":\"\(pad)\"}]")
}

func publish(_ client: RawWebSocketClient, _ template: (prefix: String, suffix: String), stats: Stats, flush: Bool) {
    client.send(template.prefix + String(Clock.nanoseconds()) + template.suffix, flush: flush)
    stats.sent += 1
}

func report(_ values: [String: any Sendable]) {
    // No latency samples (nothing delivered) gives NaN percentiles, which JSON cannot carry.
    let values = values.mapValues { value -> Any in
        if let number = value as? Double, !number.isFinite { return NSNull() }
        return value
    }
    let data = try! JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)
}

struct FanOut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fanout", abstract: "One publisher, N subscribers of one channel.")

    @OptionGroup var target: Target
    @Option(help: "Subscribers.") var subscribers = 1000
    @Option(help: "The subscribers' transport (the publisher's is WebSocket).") var transport = Transport.websocket
    @Option(help: "Message size in bytes.") var size = 32
    @Option(help: "Messages per second from the publisher; 0 = as fast as the server keeps up.") var rate = 0
    @Option(help: "With --rate 0: messages in flight (sent, not yet delivered to everyone).") var window = 32
    @Option(help: "Seconds measured (after one second of warm-up).") var duration = 5.0
    @Option(help: "Ports the subscribers connect to, in turn, comma-separated (several nodes of a cluster; default: --port, the publisher's).")
    var subscriberPorts: String?

    func run() async throws {
        let harness = Harness()
        let stats = harness.stats
        let connector = try harness.connector(target)
        let ports = subscriberPorts.map { $0.split(separator: ",").compactMap { Int($0) } } ?? [target.port]
        var opened: [LoadClient] = []
        for (index, port) in ports.enumerated() {
            let share = subscribers / ports.count + (index < subscribers % ports.count ? 1 : 0)
            let node = try Connector(loop: harness.loop, host: target.host, port: port, path: target.path)
            switch transport {
            case .websocket:
                opened += try await node.openWebSockets(count: share, concurrency: target.concurrency, stats: stats) { _ in "bench" }.get()
            case .polling:
                opened += try await node.openPolling(count: share, concurrency: target.concurrency, stats: stats) { _ in .poll(channel: "bench") }.get()
            }
        }
        let subs = opened
        let publisher = try await connector.openWebSockets(count: 1, concurrency: 1, stats: stats) { _ in nil }.get()[0]
        let ready = try await harness.on { stats.ready }
        let template = messageText(channel: "bench", size: size)
        let subscribers = self.subscribers, rate = self.rate, window = self.window
        let pacing = NIOLoopBoundBox.makeBoxSendingValue(Pacing(), eventLoop: harness.loop)
        let task = harness.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
            if rate > 0 {
                for _ in 0..<pacing.value.due(perSecond: Double(rate)) { publish(publisher, template, stats: stats, flush: false) }
                publisher.context?.flush()
            } else {
                var sentNow = 0
                while Double(stats.sent) - Double(stats.received) / Double(subscribers) < Double(window), sentNow < 256 {
                    publish(publisher, template, stats: stats, flush: false)
                    sentNow += 1
                }
                publisher.context?.flush()
            }
        }
        let measured = try await harness.measure(duration) { task.cancel() }
        let result = try await harness.on { () -> [String: any Sendable] in
            let sorted = stats.latencies.sorted()
            return [
                "scenario": "fanout", "transport": transport.rawValue, "subscribers": subscribers, "ready": ready - 1, "size": size, "rate": rate,
                "sent": stats.sent, "expected": stats.sent * subscribers, "received": stats.received,
                "deliveries_per_s": Double(measured.received) / measured.seconds,
                "p50_ms": stats.percentile(0.5, of: sorted), "p90_ms": stats.percentile(0.9, of: sorted),
                "p99_ms": stats.percentile(0.99, of: sorted), "max_ms": Double(sorted.last ?? 0) / 1000,
                "generator_cpu_percent": measured.cpuPercent,
                "disconnected": stats.disconnected, "failed": stats.failed,
            ]
        }
        report(result)
        _ = try await harness.on { for client in subs + [publisher] as [LoadClient] { client.close() } }
        try await harness.group.shutdownGracefully()
    }
}

struct ManyChannels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "channels", abstract: "Many small channels, everyone publishing.")

    @OptionGroup var target: Target
    @Option(help: "Clients.") var clients = 10000
    @Option(help: "Clients per channel.") var group = 10
    @Option(help: "Messages per second per client.") var rate = 1.0
    @Option(help: "Message size in bytes.") var size = 32
    @Option(help: "Seconds measured.") var duration = 5.0

    func run() async throws {
        let harness = Harness()
        let stats = harness.stats
        let group = self.group
        let all = try await harness.connector(target).openWebSockets(count: clients, concurrency: target.concurrency, stats: stats) { "g\($0 / group)" }.get()
        let ready = try await harness.on { stats.ready }
        let templates = (0..<(clients + group - 1) / group).map { messageText(channel: "g\($0)", size: size) }
        let perSecond = rate * Double(clients)
        let pacing = NIOLoopBoundBox.makeBoxSendingValue(Pacing(), eventLoop: harness.loop)
        let task = harness.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(10)) { _ in
            var touched: [RawWebSocketClient] = []
            for _ in 0..<pacing.value.due(perSecond: perSecond) {
                let next = pacing.value.next
                pacing.value.next += 1
                let client = all[next % all.count]
                if client.phase == .ready {
                    publish(client, templates[(next % all.count) / group], stats: stats, flush: false)
                    touched.append(client)
                }
            }
            for client in touched { client.context?.flush() }
        }
        let measured = try await harness.measure(duration) { task.cancel() }
        let result = try await harness.on { () -> [String: any Sendable] in
            let sorted = stats.latencies.sorted()
            return [
                "scenario": "channels", "clients": clients, "ready": ready, "group": group, "rate": rate,
                "sent": stats.sent, "expected": stats.sent * (group - 1), "received": stats.received,
                "publishes_per_s": Double(measured.sent) / measured.seconds,
                "deliveries_per_s": Double(measured.received) / measured.seconds,
                "p50_ms": stats.percentile(0.5, of: sorted), "p99_ms": stats.percentile(0.99, of: sorted),
                "max_ms": Double(sorted.last ?? 0) / 1000,
                "generator_cpu_percent": measured.cpuPercent,
                "disconnected": stats.disconnected, "failed": stats.failed,
            ]
        }
        report(result)
        _ = try await harness.on { for client in all { client.close() } }
        try await harness.group.shutdownGracefully()
    }
}

struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open N connections and hold them until stdin closes.")

    @OptionGroup var target: Target
    @Option(help: "Connections.") var connections = 1000
    @Option(help: "A channel each connection subscribes to (none by default).") var channel: String?

    func run() async throws {
        let harness = Harness()
        let stats = harness.stats
        let started = Clock.nanoseconds()
        let channel = self.channel
        let all = try await harness.connector(target).openWebSockets(count: connections, concurrency: target.concurrency, stats: stats) { _ in channel }.get()
        let elapsed = Double(Clock.nanoseconds() - started) / 1e9
        let (ready, failed) = try await harness.on { (stats.ready, stats.failed) }
        report(["scenario": "idle", "connections": connections, "ready": ready, "failed": failed, "seconds_to_connect": elapsed])
        fflush(nil)
        while readLine() != nil {}
        let disconnected = try await harness.on { stats.disconnected }
        report(["scenario": "idle-end", "disconnected": disconnected])
        _ = try await harness.on { for client in all { client.close() } }
        try await harness.group.shutdownGracefully()
    }
}

struct ConnectRate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Handshakes per second: over WebSocket, or over polling then upgraded to WebSocket.")

    @OptionGroup var target: Target
    @Option(help: "websocket, or polling (then upgrade).") var transport = Transport.websocket
    @Option(help: "Connections in total.") var count = 20000

    func run() async throws {
        let harness = Harness()
        let stats = harness.stats
        let cpu0 = ProcessCPU.seconds()
        let started = Clock.nanoseconds()
        let connector = try harness.connector(target)
        switch transport {
        case .websocket:
            _ = try await connector.openWebSockets(count: count, concurrency: target.concurrency, stats: stats, closeAfterConnect: true) { _ in nil }.get()
        case .polling:
            _ = try await connector.openPolling(count: count, concurrency: target.concurrency, stats: stats) { _ in .upgradeAndClose }.get()
        }
        let elapsed = Double(Clock.nanoseconds() - started) / 1e9
        let cpu = ProcessCPU.seconds() - cpu0
        let (handshakes, failed) = try await harness.on { (stats.handshakes, stats.failed) }
        report(["scenario": "connect", "transport": transport.rawValue, "count": count, "handshakes": handshakes, "failed": failed,
                "handshakes_per_s": Double(handshakes) / elapsed, "generator_cpu_percent": cpu / elapsed * 100])
        try await harness.group.shutdownGracefully()
    }
}
