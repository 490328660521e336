import Foundation
import Logging

/// Logs handlers that run too long.
///
/// A handler runs on its socket's network thread; one that blocks stalls every socket of that
/// loop, so the operator must hear which one it is, while it happens: plugin, version, event and
/// socket, within a tick (100 ms) of passing the threshold.
final class HandlerWatchdog: Sendable {
    private let threshold: Duration
    private let logger: Logger
    static let repeatEvery: Duration = .seconds(10)

    init(threshold: Duration, logger: Logger) {
        self.threshold = threshold
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: 0.1)
                check()
            }
        }
        thread.name = "sio-handler-watchdog"
        thread.start()
    }

    private func check() {
        for thread in DispatchThread.registry.withLockedValue({ $0 }) {
            guard let running = thread.overdue(threshold: threshold, repeatEvery: Self.repeatEvery) else { continue }
            let elapsed = ContinuousClock.now - running.started
            logger.warning("handler running too long", metadata: [
                "plugin": "\(running.plugin)",
                "event": "\(LoadedPlugin.eventNames[Int(running.kind.rawValue)])",
                "socket": "\(running.socketID)",
                "running_ms": "\(elapsed.microseconds / 1000)",
            ])
        }
    }
}
