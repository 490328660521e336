import NIOCore
import NIOHTTP1
import NIOWebSocket
import SocketIOCodec

/// Serves the HTTP side of one TCP connection: Engine.IO long-polling, CORS preflight, static
/// files, and the upgrade to WebSocket. Request bodies are bounded by `maxPayload` while they
/// arrive, never after.
///
/// It upgrades by itself rather than through NIO's `HTTPServerUpgradeHandler`: that one looks at
/// a connection's first request only (aiohttp upgrades on the keep-alive connection it polled
/// on, so it had to be re-added after every response), and its chain of futures and handler
/// removals was a quarter of the server's time per WebSocket handshake.
final class EngineHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: ServerContext
    private let staticFiles: StaticFiles?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var discardingBody = false
    /// The session whose GET this connection holds open, so a dropped connection ends it.
    private var parkedSession: EngineSession?
    /// Runs while the connection waits for a request head (its first, or the next on a
    /// keep-alive connection): a client that sends half a head, or nothing, is closed when it
    /// fires, instead of holding a descriptor for ever.
    private var headerTimer: NIOScheduledCallback?
    private var isRemoved = false
    /// The address this connection counts against in `ConnectionLimits`, once its first head
    /// came; handed to the WebSocket transport on upgrade.
    private var limitSlot: String?
    private var admitted = false

    /// The names under which the pipeline holds NIO's HTTP handlers, which an upgrade removes.
    enum HandlerName {
        static let encoder = "http-encoder"
        static let decoder = "http-decoder"
        static let others = ["http-pipelining", "http-errors"]
    }

    init(server: ServerContext) {
        self.server = server
        self.staticFiles = server.configuration.staticDirectory.map(StaticFiles.init(root:))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        awaitHead(context: context)
    }

    /// Counts this connection against the limits; the HTTP status to refuse it with, if any.
    private func admit(context: ChannelHandlerContext, head: HTTPRequestHead) -> HTTPResponseStatus? {
        let limits = server.connectionLimits
        guard limits.isLimiting else { return nil }
        let address = HandshakeRequest.clientAddress(
            peer: context.channel.remoteAddress?.ipAddress ?? "",
            forwardedFor: head.headers[canonicalForm: "x-forwarded-for"].map(String.init),
            trustedProxies: server.configuration.trustedProxies)
        switch limits.admit(address) {
        case nil:
            limitSlot = address
            return nil
        case .full?:
            server.logger.warning("connection refused: --max-connections reached", metadata: ["address": "\(address)"])
            return .serviceUnavailable
        case .tooManyFromAddress?:
            server.logger.warning("connection refused: --max-connections-per-ip reached", metadata: ["address": "\(address)"])
            return .tooManyRequests
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        isRemoved = true
        headerTimer?.cancel()
        headerTimer = nil
    }

    private func awaitHead(context: ChannelHandlerContext) {
        headerTimer?.cancel()
        headerTimer = try? context.eventLoop.scheduleCallback(
            in: .init(server.configuration.headerTimeout), handler: HeaderTimeout(channel: context.channel))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            headerTimer?.cancel()
            headerTimer = nil
            if !admitted {
                admitted = true
                if let refusal = admit(context: context, head: head) {
                    discardingBody = true
                    return respond(context: context, status: refusal, contentType: "text/plain",
                                   body: ByteBuffer(string: refusal == .tooManyRequests ? "Too many connections from your address\n" : "Server full\n"),
                                   keepAlive: false, extraHeaders: [])
                }
            }
            self.head = head
            self.body = nil
            if head.method == .POST, let length = head.headers.first(name: "content-length").flatMap(Int.init),
                length > server.configuration.maxPayload
            {
                refuseOversizeBody(context: context)
            }
        case .body(var chunk):
            guard !discardingBody else { return }
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            if body!.readableBytes > server.configuration.maxPayload {
                refuseOversizeBody(context: context)
            }
        case .end:
            guard !discardingBody, let head else { return }
            self.head = nil
            if Self.asksForWebSocket(head) {
                upgradeOrRoute(context: context, head: head)
            } else {
                route(context: context, head: head, body: body ?? ByteBuffer())
            }
            body = nil
        }
    }

    // MARK: Upgrade

    private static func asksForWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
            && head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }

    /// Upgrades a WebSocket request for the Engine.IO path with `EIO=4&transport=websocket`, and
    /// an upgrade of a session only while it is still on long-polling; anything else is routed
    /// as plain HTTP, which answers with the matching Engine.IO error.
    private func upgradeOrRoute(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let request = HandshakeRequest(head: head, peer: context.channel.remoteAddress?.ipAddress ?? "",
                                       trustedProxies: server.configuration.trustedProxies)
        let query = QueryString.parse(request.query)
        guard isEnginePath(request.path[...]), query["EIO"] == "4", query["transport"] == "websocket" else {
            return route(context: context, head: head, body: ByteBuffer())
        }
        // Browsers apply no CORS to WebSockets: the server refuses a foreign page itself
        // (cross-site WebSocket hijacking).
        guard OriginPolicy(allowed: server.configuration.corsOrigins)
            .allows(origin: head.headers.first(name: "origin"), host: head.headers.first(name: "host")) else {
            return respond(context: context, error: .forbidden, origin: nil, keepAlive: false)
        }
        guard let sid = query["sid"] else {
            return upgrade(context: context, head: head, request: request, sid: nil)
        }
        guard server.session(sid) != nil else {
            return route(context: context, head: head, body: ByteBuffer())
        }
        // Upgraded whether or not the session can probe now: one that cannot (already on
        // WebSocket) refuses the probe and the server closes this WebSocket, which is what the
        // protocol asks for ("ignore a WebSocket connection with the same sid after upgrade").
        upgrade(context: context, head: head, request: request, sid: sid)
    }

    /// Answers 101 and swaps the HTTP handlers for the WebSocket transport.
    /// The 101 is written but not flushed: it leaves in one write with the open packet.
    private func upgrade(context: ChannelHandlerContext, head: HTTPRequestHead, request: HandshakeRequest, sid: String?) {
        // NIO's upgrader checks the key and version and computes Sec-WebSocket-Accept; its
        // future is already complete when it returns.
        Self.acceptHeaders.buildUpgradeResponse(channel: context.channel, upgradeRequest: head, initialResponseHeaders: HTTPHeaders())
            .assumeIsolated().whenComplete { [self] result in
                guard case .success(let headers) = result, context.channel.isActive else {
                    return route(context: context, head: head, body: ByteBuffer())
                }
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))),
                              promise: nil)
                let pipeline = context.pipeline.syncOperations
                do {
                    for name in [HandlerName.encoder] + HandlerName.others { pipeline.removeHandler(name: name, promise: nil) }
                    try pipeline.addHandler(WebSocketTransportHandler(server: server, request: request, upgradingSID: sid, limitSlot: limitSlot))
                    limitSlot = nil  // the WebSocket transport releases it when the connection closes
                    pipeline.removeHandler(context: context, promise: nil)
                    // Last: whatever bytes came after the request (a first frame) go on to the
                    // WebSocket decoder.
                    pipeline.removeHandler(name: HandlerName.decoder, promise: nil)
                    // A new session's open packet carries the 101 out; a probe waits for the client.
                    if sid != nil { context.channel.flush() }
                } catch {
                    context.close(promise: nil)
                }
            }
    }

    private static let acceptHeaders = NIOWebSocketServerUpgrader(
        shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
        upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() })

    private func isEnginePath(_ path: Substring) -> Bool {
        let enginePath = server.configuration.path
        return path == enginePath || path + "/" == enginePath
    }

    // MARK: HTTP

    func channelInactive(context: ChannelHandlerContext) {
        if let slot = limitSlot {
            limitSlot = nil
            server.connectionLimits.release(slot)
        }
        if let session = parkedSession {
            parkedSession = nil
            session.eventLoop.execute { session.close(reason: .transportClose) }
        }
        context.fireChannelInactive()
    }

    private func refuseOversizeBody(context: ChannelHandlerContext) {
        discardingBody = true
        body = nil
        respond(context: context, error: .payloadTooLarge, origin: head?.headers.first(name: "origin"), keepAlive: false)
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        let enginePath = server.configuration.path
        if isEnginePath(path) {
            engineRequest(context: context, head: head, body: body)
        } else if path == enginePath + "socket.io.js", head.method == .GET || head.method == .HEAD {
            if let script = server.clientScript.body {
                respond(context: context, status: .ok, contentType: "application/javascript; charset=utf-8", body: script,
                        keepAlive: head.isKeepAlive, extraHeaders: [("Cache-Control", "no-cache")])
            } else {
                respond(context: context, status: .notFound, contentType: "text/plain",
                        body: ByteBuffer(string: ClientScript.missingMessage + "\n"), keepAlive: head.isKeepAlive, extraHeaders: [])
            }
        } else if let staticFiles, head.method == .GET || head.method == .HEAD {
            let response = staticFiles.response(for: String(path))
            respond(context: context, status: response.status, contentType: response.contentType,
                    body: response.body, keepAlive: head.isKeepAlive, extraHeaders: [])
        } else {
            respond(context: context, status: .notFound, contentType: "text/plain", body: ByteBuffer(string: "Not Found"),
                    keepAlive: head.isKeepAlive, extraHeaders: [])
        }
    }

    private func engineRequest(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        let origin = head.headers.first(name: "origin")
        let keepAlive = head.isKeepAlive
        if head.method == .OPTIONS {
            var headers = corsHeaders(origin: origin)
            if !headers.isEmpty {
                headers.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
                let requested = head.headers.first(name: "access-control-request-headers") ?? "content-type"
                headers.append(("Access-Control-Allow-Headers", requested))
                headers.append(("Access-Control-Max-Age", "86400"))
            }
            respond(context: context, status: .noContent, contentType: nil, body: ByteBuffer(), keepAlive: keepAlive, extraHeaders: headers)
            return
        }
        let request = HandshakeRequest(head: head, peer: context.channel.remoteAddress?.ipAddress ?? "", trustedProxies: server.configuration.trustedProxies)
        switch EngineRequestRoute(method: head.method, query: QueryString.parse(request.query)) {
        case .failure(let error):
            respond(context: context, error: error, origin: origin, keepAlive: keepAlive)
        case .handshake:
            let session = EngineSession(eventLoop: context.eventLoop, request: request, context: server, webSocket: nil)
            guard server.register(session) else {
                respond(context: context, error: .forbidden, origin: origin, keepAlive: false)
                return
            }
            session.open()
            Self.poll(NIOLoopBound((self, context), eventLoop: context.eventLoop), session: session, origin: origin, keepAlive: keepAlive)
        case .poll(let sid):
            guard let session = server.session(sid) else {
                respond(context: context, error: .unknownSession, origin: origin, keepAlive: keepAlive)
                return
            }
            let connection = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            session.eventLoop.execute {
                Self.poll(connection, session: session, origin: origin, keepAlive: keepAlive)
            }
        case .post(let sid):
            guard let session = server.session(sid) else {
                respond(context: context, error: .unknownSession, origin: origin, keepAlive: keepAlive)
                return
            }
            let connection = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            session.eventLoop.execute {
                session.counters?.bytesReceived += body.readableBytes
                let error = session.receivePost(body)
                connection.eventLoop.execute {
                    let (handler, context) = connection.value
                    if let error {
                        handler.respond(context: context, error: error, origin: origin, keepAlive: keepAlive)
                    } else {
                        handler.respond(context: context, status: .ok, contentType: "text/html", body: ByteBuffer(string: "ok"),
                                        keepAlive: keepAlive, extraHeaders: handler.corsHeaders(origin: origin))
                    }
                }
            }
        }
    }

    /// Runs on the session's loop; the connection (this handler and its context, bound to its
    /// own loop) is touched on that loop only, where the answer is written.
    private static func poll(_ connection: NIOLoopBound<(EngineHTTPHandler, ChannelHandlerContext)>, session: EngineSession,
                             origin: String?, keepAlive: Bool) {
        let loop = connection.eventLoop
        loop.execute { connection.value.0.parkedSession = session }
        session.poll { outcome in
            if case .packets(let body) = outcome { session.counters?.bytesSent += body.readableBytes }
            loop.execute {
                let (handler, context) = connection.value
                if handler.parkedSession === session { handler.parkedSession = nil }
                switch outcome {
                case .packets(let body):
                    handler.respond(context: context, status: .ok, contentType: "text/plain; charset=UTF-8", body: body,
                                    keepAlive: keepAlive, extraHeaders: handler.corsHeaders(origin: origin))
                case .refused(let error):
                    handler.respond(context: context, error: error, origin: origin, keepAlive: keepAlive)
                }
            }
        }
    }

    private func corsHeaders(origin: String?) -> [(String, String)] {
        let allowed = server.configuration.corsOrigins
        guard let origin, !allowed.isEmpty, allowed.contains("*") || allowed.contains(origin) else { return [] }
        return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
    }

    private func respond(context: ChannelHandlerContext, error: EngineHTTPError, origin: String?, keepAlive: Bool) {
        respond(context: context, status: HTTPResponseStatus(statusCode: error.status), contentType: "application/json",
                body: ByteBuffer(string: error.body), keepAlive: keepAlive, extraHeaders: corsHeaders(origin: origin))
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String?, body: ByteBuffer,
                         keepAlive: Bool, extraHeaders: [(String, String)]) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(contentsOf: extraHeaders)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            done.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else if context.channel.isActive, !isRemoved {
            awaitHead(context: context)
        }
    }
}

/// Closes a connection that kept the server waiting for a request head.
private struct HeaderTimeout: NIOScheduledCallbackHandler, Sendable {
    let channel: Channel

    func handleScheduledCallback(eventLoop: some EventLoop) {
        channel.close(promise: nil)
    }
}

private extension ChannelHandlerContext {
    func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}

/// Confined to its channel's event loop, as NIO's own handlers are.
@available(*, unavailable)
extension EngineHTTPHandler: Sendable {}
