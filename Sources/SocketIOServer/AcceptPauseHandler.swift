#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore

/// Pauses accepting for a moment when the process is out of descriptors (or memory), on a loop
/// that accepts through NIO's `ServerBootstrap` (the one-loop server).
///
/// NIO's `AcceptBackoffHandler` waits for a `read()` to hold back, but a failed `accept` leaves
/// the listening channel's read pending and registered, so no `read()` comes: the loop retried
/// `accept` at full speed (100 % CPU and 890,000 log lines in 5 s at 1,024 descriptors,
/// measured). Turning `autoRead` off unregisters the listener at once; it is turned back on
/// after `pause`. The log line comes at most once per `logInterval`, as the `Acceptor`'s does.
final class AcceptPauseHandler: ChannelInboundHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let pause: TimeAmount
    private let logInterval: TimeAmount
    private let logger: Logger
    private var paused = false
    private var lastLogged: NIODeadline?

    init(pause: TimeAmount = .milliseconds(100), logInterval: TimeAmount = .seconds(10), logger: Logger) {
        self.pause = pause
        self.logInterval = logInterval
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        let now = NIODeadline.now()
        if lastLogged.map({ now - $0 >= logInterval }) ?? true {
            lastLogged = now
            logger.warning("accepting paused: \(String(cString: strerror(error.errnoCode))); new connections wait until descriptors are freed")
        }
        guard !paused else { return }
        paused = true
        let channel = context.channel
        channel.setOption(.autoRead, value: false).whenComplete { _ in }
        context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
            paused = false
            channel.setOption(.autoRead, value: true).whenComplete { _ in }
        }
    }
}

@available(*, unavailable)
extension AcceptPauseHandler: Sendable {}
