import NIOCore

/// Writes pre-encoded frames to one WebSocket, and flushes once per event-loop tick.
///
/// The frames bypass NIO's `WebSocketFrameEncoder`: they are written from a handler at the head
/// of the pipeline. Flushing is deferred to the end of the current batch of tasks, so that all
/// messages for this socket produced while handling one read go out in one `writev`.
final class WebSocketOutput: @unchecked Sendable {
    let channel: Channel
    private let head: HeadWriter
    private var flushScheduled = false

    init(channel: Channel, head: HeadWriter) {
        self.channel = channel
        self.head = head
    }

    func write(_ message: OutboundMessage) {
        if channel.eventLoop.inEventLoop {
            writeOnLoop(message.webSocketFrames)
        } else {
            channel.eventLoop.execute { self.writeOnLoop(message.webSocketFrames) }
        }
    }

    private func writeOnLoop(_ frames: ByteBuffer) {
        guard let context = head.context else { return }
        context.write(NIOAny(frames), promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        channel.eventLoop.execute { [self] in
            flushScheduled = false
            head.context?.flush()
        }
    }
}

/// Sits at the head of a WebSocket pipeline only to lend its context to `WebSocketOutput`;
/// below the frame encoder everything outbound is bytes, which it passes on untouched.
final class HeadWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer

    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}
