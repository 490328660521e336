import NIOConcurrencyHelpers

/// `--max-connections` and `--max-connections-per-ip`: connections counted from their first
/// request head, when the client's address is known (the `X-Forwarded-For` of a trusted proxy,
/// else the peer), until they close, WebSocket or not. A connection past a limit is answered
/// with an HTTP error and closed before any session exists.
final class ConnectionLimits: Sendable {
    enum Refusal: Equatable {
        /// 503: the server holds `maxTotal` connections.
        case full
        /// 429: this address holds `maxPerAddress`.
        case tooManyFromAddress
    }

    let maxTotal: Int?
    let maxPerAddress: Int?
    private let state = NIOLockedValueBox<(total: Int, perAddress: [String: Int])>((0, [:]))

    init(maxTotal: Int?, maxPerAddress: Int?) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
    }

    var isLimiting: Bool { maxTotal != nil || maxPerAddress != nil }

    /// Takes a slot for `address`, or says why not.
    func admit(_ address: String) -> Refusal? {
        state.withLockedValue { state in
            if let maxTotal, state.total >= maxTotal { return .full }
            let held = state.perAddress[address, default: 0]
            if let maxPerAddress, held >= maxPerAddress { return .tooManyFromAddress }
            state.total += 1
            state.perAddress[address] = held + 1
            return nil
        }
    }

    func release(_ address: String) {
        state.withLockedValue { state in
            state.total -= 1
            let held = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = held > 0 ? held : nil
        }
    }
}
