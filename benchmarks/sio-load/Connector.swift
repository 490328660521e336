import NIOCore
import NIOPosix

/// What the scenarios hold of a client, whatever its transport.
protocol LoadClient: AnyObject, Sendable {
    var isReady: Bool { get }
    func close()
}

/// Opens connections to the server, and many clients with bounded concurrency, on one event loop.
///
/// `@unchecked Sendable`: the load generator runs every client on its single event loop, and
/// async code reaches them only through `Harness.on`, which runs there.
final class Connector: @unchecked Sendable {
    let loop: EventLoop
    let host: String
    let port: Int
    let path: String
    private let address: SocketAddress

    init(loop: EventLoop, host: String, port: Int, path: String) throws {
        self.loop = loop
        self.host = host
        self.port = port
        self.path = path
        // Resolved once: connect(host:port:) would run getaddrinfo for every connection.
        self.address = try SocketAddress.makeAddressResolvingHost(host, port: port)
    }

    /// One bootstrap for every connection: building one per connection was a measurable share
    /// of the generator's time in the connect scenario.
    private lazy var bootstrap = ClientBootstrap(group: loop)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connectTimeout(.seconds(10))
        .channelInitializer { channel in
            // Closing with a reset leaves no TIME_WAIT behind: thousands of those make every
            // new connect() search for a free port, and the generator would measure itself.
            (channel as? SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                ?? channel.eventLoop.makeSucceededVoidFuture()
        }

    /// One TCP connection with `handler` as its only handler, added once connected (the
    /// handler starts in `handlerAdded`).
    func connect(_ handler: ChannelHandler) -> EventLoopFuture<Void> {
        bootstrap.connect(to: address).assumeIsolated().flatMapThrowing { channel in
            try channel.pipeline.syncOperations.addHandler(handler)
        }.nonisolated()
    }

    /// Starts `count` clients, at most `concurrency` of them settling at once; `make(i, settled)`
    /// creates and starts client i, which calls `settled` once ready or failed. Completes when
    /// every one has settled.
    func open<Client: LoadClient>(
        count: Int, concurrency: Int, make: @escaping (Int, @escaping (Bool) -> Void) -> Client
    ) -> EventLoopFuture<[Client]> {
        guard count > 0 else { return loop.makeSucceededFuture([]) }
        let opening = Opening(count: count, promise: loop.makePromise(of: [Client].self), make: make)
        loop.execute {
            for _ in 0..<min(concurrency, count) { opening.startNext() }
        }
        return opening.promise.futureResult
    }

    /// `count` WebSocket clients; client i subscribes to `channel(i)` when not nil.
    func openWebSockets(count: Int, concurrency: Int, stats: Stats, closeAfterConnect: Bool = false,
                        channel: @escaping (Int) -> String?) -> EventLoopFuture<[RawWebSocketClient]> {
        open(count: count, concurrency: concurrency) { index, settled in
            let client = RawWebSocketClient(host: "\(self.host):\(self.port)", path: self.path, channel: channel(index),
                                            stats: stats, onSettled: settled)
            client.closeAfterConnect = closeAfterConnect
            client.start(self)
            return client
        }
    }

    /// `count` long-polling clients.
    func openPolling(count: Int, concurrency: Int, stats: Stats, mode: @escaping (Int) -> PollingClient.Mode) -> EventLoopFuture<[PollingClient]> {
        open(count: count, concurrency: concurrency) { index, settled in
            let client = PollingClient(connector: self, mode: mode(index), stats: stats, onSettled: settled)
            client.start()
            return client
        }
    }
}

/// The clients of one `Connector.open`, started a few at a time.
///
/// `@unchecked Sendable`: created off the loop, then touched on it only.
private final class Opening<Client: LoadClient>: @unchecked Sendable {
    let count: Int
    let promise: EventLoopPromise<[Client]>
    private let make: (Int, @escaping (Bool) -> Void) -> Client
    private var clients: [Client] = []
    private var started = 0
    private var finished = 0

    init(count: Int, promise: EventLoopPromise<[Client]>, make: @escaping (Int, @escaping (Bool) -> Void) -> Client) {
        self.count = count
        self.promise = promise
        self.make = make
    }

    func startNext() {
        let index = started
        started += 1
        clients.append(make(index) { _ in self.finishOne() })
    }

    private func finishOne() {
        finished += 1
        if finished == count {
            promise.succeed(clients)
        } else if started < count {
            startNext()
        }
    }
}
