import NIOCore

/// `--max-events-per-second` and `--event-burst` for one socket: a token bucket that refills at
/// `rate` a second up to `burst`. An event finding it empty is dropped; a socket that drops more
/// than half the rate's worth of events in a window of 5 s — it keeps sending at least 1.5 times
/// what it may for a few seconds — is disconnected.
///
/// A pure state machine: the caller gives the time, so it is tested without clocks or sockets.
struct EventRateLimiter: Sendable {
    enum Verdict: Equatable {
        case accept
        /// The first drop after accepted events: raise `on_error` once for the run of drops.
        case dropAndReport
        case drop
        case disconnect
    }

    static let window: Int64 = 5_000_000_000

    private let rate: Double
    private let burst: Double
    private var tokens: Double
    private var last: Int64
    private var dropping = false
    private var windowStart: Int64
    private var droppedInWindow = 0

    init(rate: Int, burst: Int, now: Int64) {
        self.rate = Double(rate)
        self.burst = Double(max(burst, 1))
        self.tokens = Double(max(burst, 1))
        self.last = now
        self.windowStart = now
    }

    /// `now` in nanoseconds on a monotonic clock.
    mutating func event(now: Int64) -> Verdict {
        tokens = min(burst, tokens + Double(now - last) / 1e9 * rate)
        last = now
        if tokens >= 1 {
            tokens -= 1
            dropping = false
            return .accept
        }
        if now - windowStart > Self.window {
            windowStart = now
            droppedInWindow = 0
        }
        droppedInWindow += 1
        if Double(droppedInWindow) > rate * Double(Self.window) / 1e9 / 2 { return .disconnect }
        defer { dropping = true }
        return dropping ? .drop : .dropAndReport
    }
}
