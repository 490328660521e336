/// Why the server stopped with an error after a graceful shutdown: some sessions sat on event
/// loops that never came back (a handler that does not return), so they got no `disconnect`.
public struct ShutdownError: Error, CustomStringConvertible {
    public var abandonedSessions: Int
    public var description: String {
        "\(abandonedSessions) session(s) abandoned: their event loop was stalled past the shutdown timeout"
    }
}
