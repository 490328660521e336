import CoreMetrics
import Foundation
import NIOConcurrencyHelpers

/// What the last reload did to a file, for operators (`sio plugins`, the admin page).
public struct ReloadRecord: Sendable, Equatable {
    /// `loaded`, `reloaded`, `unchanged`, `removed` or `refused: why`.
    public var outcome: String
    public var at: Date
}

/// Every file's last reload outcome, and reloads counted by outcome (`sio_reloads_total`).
final class ReloadHistory: Sendable {
    private let records = NIOLockedValueBox<[String: ReloadRecord]>([:])
    private let counters = ["loaded", "reloaded", "unchanged", "removed", "refused"].map {
        ($0, Counter(label: "sio_reloads_total", dimensions: [("outcome", $0)]))
    }

    func record(_ reports: [PluginLoadReport]) {
        let now = Date()
        records.withLockedValue { records in
            for report in reports {
                records[report.file] = ReloadRecord(outcome: report.outcome.summary, at: now)
            }
        }
        for report in reports {
            let word = report.outcome.isRefused ? "refused" : report.outcome.summary
            counters.first { $0.0 == word }?.1.increment()
        }
    }

    var last: [String: ReloadRecord] { records.withLockedValue { $0 } }
}
