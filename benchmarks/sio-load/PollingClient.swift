import NIOCore

/// One Socket.IO client over HTTP long-polling, spoken by hand: the Engine.IO handshake GET, the
/// Socket.IO CONNECT by POST, then either an `__subscribe__` and a GET loop counting `message`
/// events (as `RawWebSocketClient` does), or the upgrade to WebSocket (`2probe`, `3probe`, `5`).
/// GETs and POSTs go on two connections, as browsers do, so a POST never waits for a poll.
///
/// `@unchecked Sendable`: the load generator runs every client on its single event loop, and
/// async code reaches them only through `Harness.on`, which runs there.
final class PollingClient: LoadClient, @unchecked Sendable {
    enum Mode {
        /// Join the channel (when not nil), then poll until closed.
        case poll(channel: String?)
        /// Upgrade to WebSocket once connected, then close.
        case upgradeAndClose
    }

    private let connector: Connector
    private let mode: Mode
    private let stats: Stats
    private let onSettled: (Bool) -> Void
    private let hostHeader: String
    private var settled = false
    private var sid = ""
    private var getLink: HTTPLink?
    private var postLink: HTTPLink?
    private var outbox: [String] = []
    private var posting = false
    private var upgrade: RawWebSocketClient?
    private(set) var isReady = false
    private var closed = false

    init(connector: Connector, mode: Mode, stats: Stats, onSettled: @escaping (Bool) -> Void) {
        self.connector = connector
        self.mode = mode
        self.stats = stats
        self.onSettled = onSettled
        self.hostHeader = "\(connector.host):\(connector.port)"
    }

    private var target: String { "\(connector.path)?EIO=4&transport=polling&sid=\(sid)" }

    func start() {
        let link = HTTPLink()
        getLink = link
        connector.connect(link).whenFailure { _ in self.settle(false) }
        link.send(HTTPLink.get("\(connector.path)?EIO=4&transport=polling", host: hostHeader)) { body in
            guard let body, let sid = Self.sid(in: body) else { return self.fail() }
            self.sid = sid
            self.post("40")
            self.poll()
        }
    }

    private func settle(_ success: Bool) {
        guard !settled else { return }
        settled = true
        if !success { stats.failed += 1 }
        onSettled(success)
    }

    private func fail() {
        if isReady { stats.disconnected += 1 }
        isReady = false
        settle(false)
        close()
    }

    private func poll() {
        guard !closed, let getLink else { return }
        getLink.send(HTTPLink.get(target, host: hostHeader)) { body in
            guard let body else { return self.fail() }
            if self.handle(payload: body) { self.poll() }
        }
    }

    /// Handles the packets of one poll; false when the session is over (or upgraded).
    private func handle(payload: ByteBuffer) -> Bool {
        var keepPolling = true
        payload.withUnsafeReadableBytes { raw in
            var start = 0
            while start <= raw.count {
                let end = raw[start...].firstIndex(of: 0x1E) ?? raw.count
                let packet = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                if !packet.isEmpty, !handle(packet: packet) { keepPolling = false }
                start = end + 1
            }
        }
        return keepPolling && !closed
    }

    private func handle(packet: UnsafeRawBufferPointer) -> Bool {
        switch packet[0] {
        case UInt8(ascii: "2"):
            post("3")
        case UInt8(ascii: "1"):
            fail()
            return false
        case UInt8(ascii: "4") where packet.count >= 2:
            switch packet[1] {
            case UInt8(ascii: "2") where isReady:
                if let t = RawWebSocketClient.timestamp(in: packet) { stats.record(sentAt: t) } else { stats.received += 1 }
            case UInt8(ascii: "0"):
                stats.connected += 1
                return connected()
            case UInt8(ascii: "3"):
                ready()
            case UInt8(ascii: "4"):
                fail()
                return false
            default:
                break
            }
        default:
            break
        }
        return true
    }

    /// The Socket.IO CONNECT was answered; false when polling stops here.
    private func connected() -> Bool {
        switch mode {
        case .poll(let channel?):
            post("420[\"__subscribe__\",\"\(channel)\"]")
        case .poll(nil):
            ready()
        case .upgradeAndClose:
            let client = RawWebSocketClient(host: hostHeader, path: connector.path, channel: nil, stats: stats) { success in
                if success { self.stats.handshakes += 1 }
                self.settle(success)
                self.close()
            }
            client.closeAfterConnect = true
            client.upgradeSid = sid
            upgrade = client
            client.start(connector)
            return false
        }
        return true
    }

    private func ready() {
        guard !isReady else { return }
        isReady = true
        stats.ready += 1
        stats.handshakes += 1
        settle(true)
    }

    /// Queues a packet; whatever is queued goes out in one POST once the previous one is answered.
    private func post(_ packet: String) {
        outbox.append(packet)
        flushOutbox()
    }

    private func flushOutbox() {
        guard !posting, !outbox.isEmpty, !closed else { return }
        if postLink == nil {
            let link = HTTPLink()
            postLink = link
            connector.connect(link).whenFailure { _ in self.fail() }
        }
        posting = true
        let body = outbox.joined(separator: "\u{1E}")
        outbox = []
        postLink!.send(HTTPLink.post(target, host: hostHeader, body: body)) { answer in
            self.posting = false
            guard answer != nil else { return self.fail() }
            self.flushOutbox()
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        getLink?.close()
        postLink?.close()
        upgrade?.close()
    }

    /// The `"sid":"…"` of an Engine.IO open packet.
    static func sid(in body: ByteBuffer) -> String? {
        guard let text = body.getString(at: body.readerIndex, length: body.readableBytes),
            let key = text.range(of: "\"sid\":\"")
        else { return nil }
        let rest = text[key.upperBound...]
        guard let quote = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<quote])
    }
}
