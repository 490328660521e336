import NIOConcurrencyHelpers
import SocketIOCodec

/// The last warnings and errors the server logged (failing handlers, refused plugins, slow
/// handlers), kept for the admin page: an operator looking at a live server should not need
/// its log to see what went wrong a minute ago.
final class RecentProblems: Sendable {
    struct Entry: Sendable {
        var time: String
        var level: String
        var message: String
        var metadata: [(String, String)]
    }

    static let capacity = 100
    private let entries = NIOLockedValueBox<[Entry]>([])

    func append(time: String, level: String, message: String, metadata: [(String, String)]) {
        entries.withLockedValue { entries in
            if entries.count == Self.capacity { entries.removeFirst() }
            entries.append(Entry(time: time, level: level, message: message, metadata: metadata))
        }
    }

    /// Newest first.
    var json: JSONValue {
        .array(entries.withLockedValue { $0 }.reversed().map { entry in
            [
                "time": .string(entry.time), "level": .string(entry.level), "message": .string(entry.message),
                "metadata": .object(entry.metadata.map { ($0.0, .string($0.1)) }),
            ]
        })
    }
}
