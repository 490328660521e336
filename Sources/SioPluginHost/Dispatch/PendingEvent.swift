import Atomics
import CSioPlugin
import NIOConcurrencyHelpers
import NIOCore
import SocketIOCodec
import SocketIOServer

/// One event that plugin handlers finish later (ABI 1.3's `defer` and `complete`): the tickets
/// still out, and what the completed ones decided.
///
/// Touched on its socket's event loop only: `complete`, on any thread, takes the ticket out
/// of `PendingTickets` and hops there.
final class PendingEvent {
    let socket: Socket
    let kind: sio_event_kind
    /// on_message: the client's ack id, answered by the first completion that brings arguments.
    let ackID: Int?
    /// Ticket → "name version" of the plugin that took it, for the log.
    var outstanding: [sio_ticket: String] = [:]
    /// The first refusal (connect, subscribe), or a connect's failure.
    var refusal: String?
    var failures: [(plugin: String, message: String)] = []
    var ackArguments: [JSONValue]?
    /// The dispatch that made it returned: it may end once `outstanding` is empty.
    var sealed = false
    /// Ended, timed out, or its socket went: later completions change nothing.
    var ended = false
    var timeout: Scheduled<Void>?

    init(socket: Socket, kind: sio_event_kind, ackID: Int?) {
        self.socket = socket
        self.kind = kind
        self.ackID = ackID
    }
}

/// Every ticket out, by number, for `complete` on any thread.
final class PendingTickets: Sendable {
    /// `@unchecked Sendable`: the event is only read or changed on its socket's loop; the
    /// table only carries it there.
    struct Entry: @unchecked Sendable {
        let event: PendingEvent
        /// A ticket is the plugin's, across its versions: a successor may complete it.
        let pluginName: String
    }

    private let entries = NIOLockedValueBox<[sio_ticket: Entry]>([:])
    /// Starts at a random number, so that tickets of one run are not those of another.
    private let next = ManagedAtomic<UInt64>(UInt64.random(in: 1...(1 << 48)))

    func issue(for event: PendingEvent, pluginName: String) -> sio_ticket {
        let ticket = next.loadThenWrappingIncrement(ordering: .relaxed)
        entries.withLockedValue { $0[ticket] = Entry(event: event, pluginName: pluginName) }
        return ticket
    }

    /// The ticket's entry, taken out: nil when it is unknown, already taken, or `pluginName`'s
    /// not.
    func take(_ ticket: sio_ticket, pluginName: String) -> Entry? {
        entries.withLockedValue { entries in
            guard let entry = entries[ticket], entry.pluginName == pluginName else { return nil }
            entries[ticket] = nil
            return entry
        }
    }

    func withdraw<S: Sequence<sio_ticket>>(_ tickets: S) {
        entries.withLockedValue { entries in
            for ticket in tickets { entries[ticket] = nil }
        }
    }

    var count: Int { entries.withLockedValue { $0.count } }
}
