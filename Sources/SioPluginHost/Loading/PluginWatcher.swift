#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Reloads plugins when a `.so` in the plugins directory is written, renamed in or out, or
/// removed.
///
/// It acts on "close after write" and "moved in", never on "modified", so a file is loaded only
/// once it is completely written; a quiet period folds the events of one copy (or of several
/// files dropped together) into one reload. A thread sleeps in `poll()` on the inotify
/// descriptor and a pipe that graceful shutdown writes to: it wakes for a change or to stop,
/// never on a timer.
public struct PluginWatcher: Service {
    private let directory: String
    private let quietPeriod: Duration
    private let action: @Sendable () async -> Void
    private let logger: Logger

    public init(directory: String, quietPeriod: Duration = .milliseconds(100), logger: Logger,
                action: @escaping @Sendable () async -> Void) {
        self.directory = directory
        self.quietPeriod = quietPeriod
        self.logger = logger
        self.action = action
    }

    public func run() async throws {
        let descriptors: Descriptors
        do {
            descriptors = try Descriptors(watching: directory)
        } catch {
            // Serving goes on without watching: SIGHUP and `sio reload` still reload.
            logger.warning("plugins are not reloaded on change: \(error)")
            try? await gracefulShutdown()
            return
        }
        let lastChange = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let (changes, changed) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let thread = Thread {
            descriptors.waitForChanges { lastChange.withLockedValue { $0 = .now }; changed.yield() }
            changed.finish()
        }
        thread.start()
        await withGracefulShutdownHandler {
            for await _ in changes {
                // Quiet for `quietPeriod` since the last event of the burst, then one reload.
                while let last = lastChange.withLockedValue({ $0 }), ContinuousClock.now - last < quietPeriod {
                    try? await Task.sleep(until: last + quietPeriod)
                }
                logger.info("plugins directory changed, reloading")
                await action()
            }
        } onGracefulShutdown: {
            descriptors.stop()
        }
    }

    struct WatchError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// The inotify descriptor and the pipe that stops its thread; closed by that thread, but
    /// for the pipe's writing end, which `stop()` closes.
    private struct Descriptors: Sendable {
        let inotify: Int32
        let stopper: Int32
        let stopWriter: Int32

        init(watching directory: String) throws {
            inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
            guard inotify >= 0 else { throw WatchError(message: "inotify_init1 failed: errno \(errno)") }
            let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)
            guard inotify_add_watch(inotify, directory, mask) >= 0 else {
                let error = errno
                close(inotify)
                throw WatchError(message: "cannot watch \(directory): errno \(error)")
            }
            var pipeEnds: [Int32] = [-1, -1]
            guard pipe(&pipeEnds) == 0 else {
                close(inotify)
                throw WatchError(message: "pipe failed: errno \(errno)")
            }
            // Kept out of the probe children that reloads spawn.
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            stopper = pipeEnds[0]
            stopWriter = pipeEnds[1]
        }

        /// Closing the writing end wakes the thread: the reading end polls as hung up.
        func stop() {
            close(stopWriter)
        }

        /// Blocks until `stop()`, calling `changed` for each batch of events that names a `.so`.
        func waitForChanges(_ changed: () -> Void) {
            defer {
                close(inotify)
                close(stopper)
            }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: stopper, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { return }
                if fds[1].revents != 0 { return }
                let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
                if count > 0, PluginWatcher.names(in: buffer, count: count).contains(where: { $0.hasSuffix(".so") }) {
                    changed()
                }
            }
        }
    }

    /// The file names of the `inotify_event` records in `buffer`.
    static func names(in buffer: [UInt8], count: Int) -> [String] {
        var names: [String] = []
        var offset = 0
        let header = MemoryLayout<inotify_event>.size
        while offset + header <= count {
            let length = buffer.withUnsafeBytes { Int($0.load(fromByteOffset: offset + 12, as: UInt32.self)) }
            let nameBytes = buffer[(offset + header)..<min(count, offset + header + length)]
            names.append(String(decoding: nameBytes.prefix(while: { $0 != 0 }), as: UTF8.self))
            offset += header + length
        }
        return names
    }
}
