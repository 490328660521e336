import Atomics

/// Sockets disconnected since the server started, by reason: the first thing an operator asks
/// when clients complain (were they slow consumers? rate limited? timing out?). One relaxed
/// increment per disconnect, nothing on the per-message path.
final class DisconnectCounts: Sendable {
    private let counts = DisconnectReason.allCases.map { _ in ManagedAtomic<Int>(0) }

    func record(_ reason: DisconnectReason) {
        guard let index = DisconnectReason.allCases.firstIndex(of: reason) else { return }
        counts[index].wrappingIncrement(ordering: .relaxed)
    }

    var snapshot: [DisconnectReason: Int] {
        Dictionary(uniqueKeysWithValues: zip(DisconnectReason.allCases, counts.map { $0.load(ordering: .relaxed) }))
    }
}
