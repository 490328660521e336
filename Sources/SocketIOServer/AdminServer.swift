#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A request to the admin endpoint.
public struct AdminRequest: Sendable {
    public var method: String
    public var path: String
    public var body: [UInt8]
}

public struct AdminResponse: Sendable {
    public var status: Int
    public var body: String

    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

/// The operator's endpoint (`sio reload`, `sio plugins`, `sio broadcast`, `sio send`): a small
/// HTTP/1.1 JSON listener, separate from the Socket.IO port so that it can stay on loopback.
///
/// With a token configured every request must carry `Authorization: Bearer TOKEN`; the CLI
/// refuses to bind it beyond loopback without one.
public final class AdminServer: Service, @unchecked Sendable {
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
                    channel.pipeline.configureHTTPServerPipeline().flatMap {
                        channel.pipeline.addHandler(AdminHTTPHandler(token: token, handler: handler))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            let failure = AdminBindError(host: host, port: port, reason: error)
            boundAddress.fail(failure)
            throw failure
        }
        boundAddress.succeed(channel.localAddress!)
        try await channel.serveUntilShutdown()
    }
}

/// The admin endpoint could not bind: says where, and how to choose otherwise.
public struct AdminBindError: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var reason: Error

    public var description: String {
        let why = (reason as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(reason)"
        return "cannot bind the admin endpoint on \(host):\(port): \(why) (choose another with --admin-port, or turn it off with --no-admin)"
    }
}

private final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let maximumBody = 1 << 20
    private let token: String?
    private let handler: AdminServer.Handler
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(token: String?, handler: @escaping AdminServer.Handler) {
        self.token = token
        self.handler = handler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
        case .body(let chunk):
            body += chunk.readableBytesView
            if body.count > Self.maximumBody {
                respond(context: context, AdminResponse(status: 413, body: #"{"error":"request too large"}"#))
                head = nil
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let refusal = AdminRequestPolicy(token: token).check(
                method: head.method.rawValue, host: head.headers.first(name: "host"), origin: head.headers.first(name: "origin"),
                contentType: head.headers.first(name: "content-type"), authorization: head.headers.first(name: "authorization"),
                port: context.channel.localAddress?.port ?? 0)
            if let refusal {
                respond(context: context, AdminResponse(status: refusal.status, body: refusal.body))
                return
            }
            let request = AdminRequest(method: head.method.rawValue, path: head.uri, body: body)
            let handler = self.handler
            let loop = context.eventLoop
            let promise = loop.makePromise(of: AdminResponse.self)
            promise.completeWithTask { await handler(request) }
            promise.futureResult.whenSuccess { [self] response in respond(context: context, response) }
        }
    }

    private func respond(context: ChannelHandlerContext, _ response: AdminResponse) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(response.body.utf8.count))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
