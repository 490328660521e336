#if canImport(Glibc)
import Glibc
#endif
import Atomics
import NIOCore

/// Tells which event loops are serving and picks one for each new connection.
///
/// A loop that has not run a heartbeat task for `stallAfter` is stalled — a handler that never
/// returns, typically. New connections then go to the other loops, so a stalled loop costs the
/// connections it already had and no more. Heartbeats are sent from the acceptor's thread, one
/// at a time per loop: a stalled loop's queue does not fill with them.
final class LoopHealth: Sendable {
    private final class Beat: Sendable {
        let loop: EventLoop
        /// Nanoseconds on the monotonic clock when the loop last ran a heartbeat.
        let lastBeat = ManagedAtomic<UInt64>(LoopHealth.now())
        let pending = ManagedAtomic<Bool>(false)

        init(loop: EventLoop) {
            self.loop = loop
        }
    }

    private let beats: [Beat]
    private let stallAfter: UInt64
    private let cursor = ManagedAtomic<Int>(0)

    init(loops: [EventLoop], stallAfter: Duration) {
        self.beats = loops.map(Beat.init)
        self.stallAfter = UInt64(stallAfter.components.seconds) * 1_000_000_000 + UInt64(stallAfter.components.attoseconds / 1_000_000_000)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sends each loop whose last heartbeat has run a new one.
    func beat() {
        for beat in beats where !beat.pending.exchange(true, ordering: .relaxed) {
            beat.loop.execute {
                beat.lastBeat.store(LoopHealth.now(), ordering: .relaxed)
                beat.pending.store(false, ordering: .relaxed)
            }
        }
    }

    func isStalled(_ index: Int) -> Bool {
        LoopHealth.now() &- beats[index].lastBeat.load(ordering: .relaxed) > stallAfter
    }

    /// The loops that are stalled now, for the log.
    var stalledCount: Int { beats.indices.filter(isStalled).count }

    /// Round robin over the loops that are not stalled; over all of them if every one is.
    func next() -> EventLoop {
        let start = cursor.loadThenWrappingIncrement(ordering: .relaxed)
        for offset in 0..<beats.count {
            let index = (start &+ offset) % beats.count
            if !isStalled(index) { return beats[index].loop }
        }
        return beats[start % beats.count].loop
    }
}
