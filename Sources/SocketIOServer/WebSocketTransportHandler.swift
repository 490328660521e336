import NIOCore
import NIOWebSocket
import SocketIOCodec

/// Carries Engine.IO packets over one WebSocket: a session of its own (direct connection) or
/// the upgrade of a long-polling session (`sid` in the query).
final class WebSocketTransportHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let server: ServerContext
    private let request: HandshakeRequest
    private let upgradingSID: String?
    private var session: EngineSession?

    init(server: ServerContext, request: HandshakeRequest, upgradingSID: String?) {
        self.server = server
        self.request = request
        self.upgradingSID = upgradingSID
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let head = HeadWriter()
        do {
            try context.pipeline.syncOperations.addHandler(head, position: .first)
        } catch {
            context.close(promise: nil)
            return
        }
        let output = WebSocketOutput(channel: channel, head: head)
        if let sid = upgradingSID {
            guard let session = server.session(sid) else {
                close(context: context, code: .policyViolation)
                return
            }
            self.session = session
            session.eventLoop.execute {
                if !session.attachProbe(output) { channel.close(promise: nil) }
            }
        } else {
            let session = EngineSession(eventLoop: context.eventLoop, request: request, context: server, webSocket: output)
            guard server.register(session) else {
                close(context: context, code: .goingAway)
                return
            }
            self.session = session
            session.open()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            deliver(context: context, Result { () throws(CodecError) in try EngineIOPacket.decodeText(frame.unmaskedData) })
        case .binary:
            deliver(context: context, .success(.binary(frame.unmaskedData)))
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            close(context: context, code: .normalClosure)
        default:
            break
        }
    }

    private func deliver(context: ChannelHandlerContext, _ result: Result<EngineIOPacket, CodecError>) {
        guard let session else { return }
        let channel = context.channel
        let run = {
            switch result {
            case .success(let packet): session.receive(packet, from: channel)
            case .failure(let error): session.socketIO.invalidPacket(error)
            }
        }
        if session.eventLoop.inEventLoop { run() } else { session.eventLoop.execute(run) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session {
            let channel = context.channel
            session.eventLoop.execute { session.webSocketClosed(channel) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOWebSocketFrameAggregator.Error {
            close(context: context, code: .messageTooLarge)
        } else {
            context.close(promise: nil)
        }
    }

    private func close(context: ChannelHandlerContext, code: WebSocketErrorCode) {
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
    }
}
