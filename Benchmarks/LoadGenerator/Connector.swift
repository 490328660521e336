import NIOCore
import NIOPosix

/// Opens many client connections with bounded concurrency, on one event loop.
final class Connector {
    let loop: EventLoop
    let host: String
    let port: Int
    let path: String
    let stats: Stats

    init(loop: EventLoop, host: String, port: Int, path: String, stats: Stats) {
        self.loop = loop
        self.host = host
        self.port = port
        self.path = path
        self.stats = stats
    }

    /// Connects `count` clients (client i subscribes to `channel(i)` when not nil); completes
    /// when every one is ready or has failed.
    func open(count: Int, concurrency: Int, closeAfterConnect: Bool = false, channel: @escaping (Int) -> String?) -> EventLoopFuture<[RawWebSocketClient]> {
        let done = loop.makePromise(of: [RawWebSocketClient].self)
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            return loop.makeFailedFuture(error)
        }
        var clients: [RawWebSocketClient] = []
        var started = 0
        var finished = 0
        guard count > 0 else { return loop.makeSucceededFuture([]) }

        func finishOne() {
            finished += 1
            if finished == count {
                done.succeed(clients)
            } else if started < count {
                startNext()
            }
        }

        func startNext() {
            let index = started
            started += 1
            let client = RawWebSocketClient(host: "\(host):\(port)", path: path, channel: channel(index), stats: stats) { _ in
                finishOne()
            }
            client.closeAfterConnect = closeAfterConnect
            clients.append(client)
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    // Closing with a reset leaves no TIME_WAIT behind: thousands of those make
                    // every new connect() search for a free port, and the generator would
                    // measure itself.
                    let linger = (channel as? SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                        ?? channel.eventLoop.makeSucceededVoidFuture()
                    return linger.flatMapThrowing { try channel.pipeline.syncOperations.addHandler(client) }
                }
                // A resolved address: connect(host:port:) would run getaddrinfo for every connection.
                .connect(to: address)
                .whenFailure { _ in client.settle(false) }
        }

        loop.execute {
            for _ in 0..<min(concurrency, count) { startNext() }
        }
        return done.futureResult
    }
}
