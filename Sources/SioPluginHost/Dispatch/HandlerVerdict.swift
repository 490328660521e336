import CSioPlugin

/// What one handler's return status means for its event: the ABI's rules in one place, for the
/// in-process dispatch and the plugin runner alike.
enum HandlerVerdict: Equatable {
    /// On to the next handler: `SIO_OK`, or `SIO_PENDING` after `defer`.
    case next
    /// The event is refused and no later handler runs: a refusal of a connection or
    /// subscription, or any failure of `on_connect` (`isFailure`, counted as a handler error).
    case refuse(String, isFailure: Bool)
    /// A failure, raised as `on_error` once the event's handlers ran.
    case fail(String)

    /// `deferred`: the handler took a ticket with `defer`.
    static func of(_ status: sio_status, kind: sio_event_kind, reason: String?, deferred: Bool) -> HandlerVerdict {
        switch status {
        case SIO_OK:
            return .next
        case SIO_PENDING where deferred:
            return .next
        case SIO_REFUSE where kind == SIO_EVENT_CONNECT || kind == SIO_EVENT_SUBSCRIBE:
            return .refuse(reason ?? "refused", isFailure: false)
        default:
            let why = status == SIO_PENDING ? "returned SIO_PENDING without api->defer"
                : reason ?? "handler failed with status \(status)"
            return kind == SIO_EVENT_CONNECT ? .refuse(why, isFailure: true) : .fail(why)
        }
    }
}
