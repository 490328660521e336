import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The operator's endpoint (`sio reload`, `sio plugins`, `sio broadcast`, `sio send`): a small
/// HTTP/1.1 JSON listener, separate from the Socket.IO port so that it can stay on loopback.
///
/// With a token configured every request must carry `Authorization: Bearer TOKEN`; the CLI
/// refuses to bind it beyond loopback without one.
public final class AdminServer: Service, Sendable {
    public typealias Handler = @Sendable (AdminRequest) async -> AdminResponse

    private let host: String
    private let port: Int
    private let token: String?
    private let handler: Handler
    private let logger: Logger
    private let boundAddress: EventLoopPromise<SocketAddress>
    private let group: EventLoopGroup

    public init(host: String, port: Int, token: String?, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger, handler: @escaping Handler) {
        self.host = host
        self.port = port
        self.token = token
        self.handler = handler
        self.logger = logger
        self.group = group
        self.boundAddress = group.next().makePromise()
    }

    public var localAddress: SocketAddress {
        get async throws { try await boundAddress.futureResult.get() }
    }

    public func run() async throws {
        let token = self.token
        let handler = self.handler
        let channel: Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(token: token, handler: handler))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            let failure = AdminBindError(host: host, port: port, reason: error)
            boundAddress.fail(failure)
            throw failure
        }
        boundAddress.succeed(channel.localAddress!)
        // Graceful shutdown and cancellation (a sibling service failed) both close the listener.
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}
