import Foundation

/// Counters and latencies of one run. Confined to the load generator's single event loop.
///
/// `@unchecked Sendable` for the same reason as the clients: it is touched on that loop only.
final class Stats: @unchecked Sendable {
    var connected = 0
    var ready = 0
    var failed = 0
    var disconnected = 0
    var sent = 0
    var received = 0
    var handshakes = 0
    /// Delivery latencies in microseconds, from the timestamp inside each message.
    var latencies: [UInt32] = []
    var measuring = false

    func record(sentAt: UInt64) {
        received += 1
        guard measuring else { return }
        let now = Clock.nanoseconds()
        latencies.append(UInt32(clamping: (now &- sentAt) / 1000))
    }

    func percentile(_ p: Double, of sorted: [UInt32]) -> Double {
        guard !sorted.isEmpty else { return .nan }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
    }
}

enum Clock {
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// CPU seconds this process has used (user + system), to show the generator is not the limit.
enum ProcessCPU {
    static func seconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
    }
}
