/// What one event loop counted since it last reported: plain integers, written on that loop
/// only, so counting a packet or a flush is an add, with no lock and no atomic.
///
/// `@unchecked Sendable` and unchecked exclusivity: every field is touched on its loop only,
/// by code that calls nothing while it holds it; the dynamic check would cost more than the
/// add it guards.
final class LoopCounters: @unchecked Sendable {
    @exclusivity(unchecked) var bytesReceived = 0
    @exclusivity(unchecked) var bytesSent = 0
    @exclusivity(unchecked) var unicasts = 0
    @exclusivity(unchecked) var connects = 0
    @exclusivity(unchecked) var disconnects = 0
    @exclusivity(unchecked) var messages = 0
    @exclusivity(unchecked) var subscribes = 0
    @exclusivity(unchecked) var unsubscribes = 0
    @exclusivity(unchecked) var acks = 0

    /// Adds what was counted to the backend's counters and starts again from zero. On the loop.
    func fold(into metrics: ServerMetrics) {
        func take(_ value: inout Int) -> Int64 {
            defer { value = 0 }
            return Int64(value)
        }
        metrics.bytesReceived.increment(by: take(&bytesReceived))
        metrics.bytesSent.increment(by: take(&bytesSent))
        let unicasts = take(&unicasts)
        metrics.unicasts.increment(by: unicasts)
        metrics.deliveries.increment(by: unicasts)
        let received = [take(&connects), take(&disconnects), take(&messages), take(&subscribes), take(&unsubscribes), take(&acks)]
        for (counter, count) in zip(metrics.packetsReceived, received) where count > 0 {
            counter.increment(by: count)
        }
    }
}
