/// A socket's `EventRateLimiter`, boxed so that a socket without a limit pays one pointer.
final class RateLimiterBox {
    var limiter: EventRateLimiter

    init(_ limiter: EventRateLimiter) {
        self.limiter = limiter
    }
}
