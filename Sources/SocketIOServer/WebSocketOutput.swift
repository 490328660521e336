import NIOConcurrencyHelpers
import NIOCore

/// Writes pre-encoded frames to one WebSocket, coalesced into one write per event-loop tick.
///
/// The frames are written from the transport handler's context, the connection's only handler
/// once upgraded. Within a tick they are gathered in one buffer (the first message's shared
/// bytes are taken as they are; later ones are appended), which is written and flushed once at
/// the end of the tick: one pass through NIO's write path per socket, not one per message.
///
/// `@unchecked Sendable`: a session on another loop holds it; `write` hops to the channel's
/// loop, and everything mutable is touched there only.
final class WebSocketOutput: @unchecked Sendable {
    let channel: Channel
    /// The channel's loop, kept: asking the channel for it on every write costs a getter call.
    private let loop: EventLoop
    private let flusher: FlushBatcher
    private var context: ChannelHandlerContext?
    /// Unchecked exclusivity, as `EngineSession.state`: appended to on every delivery, on the
    /// channel's loop only, by code that calls nothing while it holds it.
    @exclusivity(unchecked) private var pending: ByteBuffer?
    /// More than this waits to be written: the client does not read (`maxOutboundBytes`).
    private let limit: Int
    /// Told, on its own loop, when the unsent bytes pass `limit`. A reference rather than a
    /// closure: one allocation less per connection. The session drops its output when it
    /// closes, which ends the cycle.
    var session: EngineSession?
    /// The channel's loop's counters, when metrics are on.
    private let counters: LoopCounters?

    init(context: ChannelHandlerContext, limit: Int, counters: LoopCounters?) {
        self.limit = limit
        self.counters = counters
        self.channel = context.channel
        self.loop = context.eventLoop
        self.context = context
        self.flusher = FlushBatcher.forLoop(context.eventLoop)
    }

    /// The handler is gone: nothing more is written.
    func detach() {
        context = nil
    }

    /// `callerLoop` is the loop the caller runs on: its session's. An upgraded connection may
    /// have been accepted on another loop than the session's; then the write hops over.
    func write(_ message: OutboundMessage, callerLoop: EventLoop) {
        if callerLoop === loop {
            writeOnLoop(message.webSocketFrames)
        } else {
            loop.execute { self.writeOnLoop(message.webSocketFrames) }
        }
    }

    private func writeOnLoop(_ frames: ByteBuffer) {
        if pending == nil {
            pending = frames
            flusher.enqueue(self)
        } else {
            pending!.writeImmutableBuffer(frames)
        }
    }

    /// Sends what is gathered (a close packet, typically), then closes: on the channel's loop,
    /// after any write still on its way there.
    func flushAndClose() {
        loop.execute { [self] in
            flush()
            channel.close(promise: nil)
        }
    }

    /// Called by the batcher once per tick.
    func flush() {
        guard let frames = pending else { return }
        pending = nil
        guard let context else { return }
        counters?.bytesSent += frames.readableBytes
        context.writeAndFlush(NIOAny(frames), promise: nil)
        // Unwritable means half the limit waits already (the high water mark); only then is the
        // exact amount asked for.
        if !channel.isWritable, let buffered = try? channel.syncOptions?.getOption(.bufferedWritableBytes), buffered > limit {
            if let session {
                let channel = self.channel
                session.eventLoop.execute { session.slowConsumer(channel) }
            }
        }
    }
}
