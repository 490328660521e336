import NIOCore
import SocketIOCodec

/// Carries Engine.IO packets over one WebSocket: a session of its own (direct connection) or
/// the upgrade of a long-polling session (`sid` in the query).
///
/// It is the connection's only handler once upgraded: frames are parsed by
/// `WebSocketFrameParser` and written as bytes (`WebSocketFrameWriter`), so an idle client costs
/// one handler context instead of six, and each message passes one handler instead of four.
final class WebSocketTransportHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    private let request: HandshakeRequest
    private let upgradingSID: String?
    private var parser: WebSocketFrameParser
    private var session: EngineSession?
    private var output: WebSocketOutput?
    /// The address this connection counts against in `ConnectionLimits`, if limits are on.
    private var limitSlot: String?
    /// This connection's loop's counters, when metrics are on.
    private var counters: LoopCounters?

    init(server: ServerContext, request: HandshakeRequest, upgradingSID: String?, limitSlot: String?) {
        self.server = server
        self.limitSlot = limitSlot
        self.request = request
        self.upgradingSID = upgradingSID
        self.parser = WebSocketFrameParser(maxMessageSize: server.configuration.maxPayload)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        counters = server.metrics?.counters(for: context.eventLoop)
        let output = WebSocketOutput(context: context, limit: server.configuration.maxOutboundBytes, counters: counters)
        self.output = output
        if let sid = upgradingSID {
            guard let session = server.session(sid) else {
                close(context: context, code: 1008)  // policy violation
                return
            }
            self.session = session
            output.session = session
            session.eventLoop.execute {
                if !session.attachProbe(output) { channel.close(promise: nil) }
            }
        } else {
            let session = EngineSession(eventLoop: context.eventLoop, request: request, context: server, webSocket: output)
            guard server.register(session) else {
                close(context: context, code: 1001)  // going away
                return
            }
            self.session = session
            output.session = session
            session.open()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        output?.detach()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        counters?.bytesReceived += bytes.readableBytes
        parser.append(&bytes)
        processFrames(context: context)
    }

    /// Delivers the frames read so far, stopping while the channel is unwritable: what the client
    /// sent waits in the parser (and, with reading paused, in the kernel) until it has taken what
    /// is queued for it.
    private func processFrames(context: ChannelHandlerContext) {
        while context.channel.isWritable, !inputHeld(context), let frame = parser.next() {
            switch frame {
            case .text(let payload):
                deliver(context: context, Result { () throws(CodecError) in try EngineIOPacket.decodeText(payload) })
            case .binary(let payload):
                deliver(context: context, .success(.binary(payload)))
            case .ping(let payload):
                var frame = context.channel.allocator.buffer(capacity: payload.readableBytes + 2)
                WebSocketFrameWriter.writeControl(opcode: 0xA, payload: payload, into: &frame)
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            case .pong:
                break
            case .close:
                close(context: context, code: 1000)
            case .fail(let code):
                close(context: context, code: code)
            }
        }
    }

    /// On the session's loop, usually this connection's own: then directly, with no closure
    /// allocated per message and no thread check (the loops are compared by identity).
    private func deliver(context: ChannelHandlerContext, _ result: Result<EngineIOPacket, CodecError>) {
        guard let session else { return }
        let channel = context.channel
        if session.eventLoop === context.eventLoop {
            Self.deliver(result, to: session, from: channel)
        } else {
            session.eventLoop.execute { Self.deliver(result, to: session, from: channel) }
        }
    }

    private static func deliver(_ result: Result<EngineIOPacket, CodecError>, to session: EngineSession, from channel: Channel) {
        switch result {
        case .success(let packet): session.receive(packet, from: channel)
        case .failure(let error): session.socketIO.invalidPacket(error)
        }
    }

    /// Backpressure both ways: the channel stops being writable when half of `maxOutboundBytes`
    /// waits to be written (the high water mark set at accept), and then nothing more is read
    /// from the client until it takes its data (a quarter left); past the whole limit
    /// `WebSocketOutput` drops it as a slow consumer.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        try? context.channel.syncOptions?.setOption(.autoRead, value: writable && !inputHeld(context))
        if writable {
            processFrames(context: context)
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    /// The application holds the session's input (`Socket.holdInput`). Read on the session's
    /// loop only; on another (an upgrade that came in on another loop) the hold acts through
    /// `autoRead` alone.
    private func inputHeld(_ context: ChannelHandlerContext) -> Bool {
        guard let session, session.eventLoop === context.eventLoop else { return false }
        return session.inputHolds > 0
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is EngineSession.InputReleased else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let writable = context.channel.isWritable
        try? context.channel.syncOptions?.setOption(.autoRead, value: writable)
        if writable {
            processFrames(context: context)
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let slot = limitSlot {
            limitSlot = nil
            server.connectionLimits.release(slot)
        }
        if let session {
            let channel = context.channel
            session.eventLoop.execute { session.webSocketClosed(channel) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Sends a close frame with `code`, then closes the connection.
    private func close(context: ChannelHandlerContext, code: UInt16) {
        var frame = context.channel.allocator.buffer(capacity: 4)
        var status = ByteBuffer()
        status.writeInteger(code)
        WebSocketFrameWriter.writeControl(opcode: 0x8, payload: status, into: &frame)
        context.writeAndFlush(wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// Confined to its channel's event loop, as NIO's own handlers are.
@available(*, unavailable)
extension WebSocketTransportHandler: Sendable {}
