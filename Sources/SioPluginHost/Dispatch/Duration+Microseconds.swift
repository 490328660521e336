extension Duration {
    /// Whole nanoseconds, for metrics.
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// Whole microseconds, for log lines (`pause_us`, `running_ms`).
    var microseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }
}
