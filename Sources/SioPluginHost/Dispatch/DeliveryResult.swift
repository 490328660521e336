import CSioPlugin

/// What an out-of-band call achieved.
public enum DeliveryResult: Sendable, Equatable {
    case delivered(Int)
    /// The distinct "no socket" error of the seed's out-of-band calls (docs/events.md), with a one-line reason.
    case noSocket(String)

    var status: sio_status {
        if case .delivered = self { return SIO_OK }
        return SIO_ERR_NO_SOCKET
    }
}
