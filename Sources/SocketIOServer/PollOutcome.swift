import NIOCore

/// How a parked long-polling GET is answered.
enum PollOutcome {
    case packets(ByteBuffer)
    case refused(EngineHTTPError)
}
