import NIOCore
import NIOHTTP1

/// One admin request: the head and a bounded body, the policy's check, then the route's answer.
final class AdminHTTPHandler: ChannelInboundHandler {
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
                method: head.method.rawValue, path: head.uri, host: head.headers.first(name: "host"), origin: head.headers.first(name: "origin"),
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
            promise.futureResult.assumeIsolated().whenSuccess { [self] response in respond(context: context, response) }
        }
    }

    private func respond(context: ChannelHandlerContext, _ response: AdminResponse) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        // Nothing the endpoint answers may be framed by another page or cached on the way.
        headers.add(name: "X-Frame-Options", value: "DENY")
        // The admin page runs its own script and style files only, and talks to this endpoint only.
        headers.add(name: "Content-Security-Policy", value: "default-src 'self'; frame-ancestors 'none'")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Content-Length", value: String(response.body.utf8.count))
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// Confined to its channel's event loop, as NIO's own handlers are.
@available(*, unavailable)
extension AdminHTTPHandler: Sendable {}
