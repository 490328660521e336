#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOConcurrencyHelpers

/// Reloads plugins when a `.so` in the plugins directory is written, renamed in or out, or
/// removed.
///
/// It acts on "close after write" and "moved in", never on "modified", so a file is loaded only
/// once it is completely written; a short quiet period folds the events of one copy (or of
/// several files dropped together) into one reload.
public final class PluginWatcher: @unchecked Sendable {
    private let directory: String
    private let quietPeriod: Duration
    private let action: @Sendable () -> Void
    private let logger: Logger
    private let running = NIOLockedValueBox(true)
    private var descriptor: Int32 = -1

    public init(directory: String, quietPeriod: Duration = .milliseconds(100), logger: Logger, action: @escaping @Sendable () -> Void) {
        self.directory = directory
        self.quietPeriod = quietPeriod
        self.logger = logger
        self.action = action
    }

    public func start() throws {
        descriptor = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard descriptor >= 0 else { throw WatchError(message: "inotify_init1 failed: errno \(errno)") }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)
        guard inotify_add_watch(descriptor, directory, mask) >= 0 else {
            close(descriptor)
            throw WatchError(message: "cannot watch \(directory): errno \(errno)")
        }
        Thread.detachNewThread { [self] in watch() }
    }

    public func stop() {
        running.withLockedValue { $0 = false }
    }

    struct WatchError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    private func watch() {
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var pendingSince: ContinuousClock.Instant?
        while running.withLockedValue({ $0 }) {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 20)
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0, Self.names(in: buffer, count: count).contains(where: { $0.hasSuffix(".so") }) {
                pendingSince = .now
            }
            if let since = pendingSince, ContinuousClock.now - since >= quietPeriod {
                pendingSince = nil
                logger.info("plugins directory changed, reloading")
                action()
            }
        }
    }

    /// The file names of the `inotify_event` records in `buffer`.
    private static func names(in buffer: [UInt8], count: Int) -> [String] {
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
