import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import SocketIOCodec

/// How `sio serve` writes its log lines (`--log-format`).
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    /// `2026-11-30T11:17:12.345Z info sio: key=value … [Module] message`, as swift-log's stream
    /// handler writes it but for the milliseconds and UTC.
    case text
    /// One JSON object per line: `time`, `level`, `source`, `message`, then the metadata keys.
    case json
}

/// Writes log lines to standard error, one `write` each, in the chosen format.
struct LogLineHandler: LogHandler {
    let label: String
    let format: LogFormat
    /// Where warnings and errors are also kept, for the admin page.
    let recent: RecentProblems?
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    /// One line at a time from every thread.
    private static let output = NIOLock()

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let time = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        if event.level >= .warning {
            recent?.append(time: time, level: event.level.rawValue, message: event.message.description,
                           metadata: merged.sorted { $0.key < $1.key }.map { ($0.key, $0.value.description) })
        }
        let line: String
        switch format {
        case .text:
            let pairs = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            line = "\(time) \(event.level) \(label):\(pairs.isEmpty ? "" : " " + pairs) [\(event.source)] \(event.message)\n"
        case .json:
            var fields: [(String, JSONValue)] = [
                ("time", .string(time)), ("level", .string(event.level.rawValue)), ("source", .string(event.source)),
                ("message", .string(event.message.description)),
            ]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) where !["time", "level", "source", "message"].contains(key) {
                fields.append((key, .string(value.description)))
            }
            line = JSONValue.object(fields).jsonText + "\n"
        }
        let bytes = Data(line.utf8)
        Self.output.withLock { FileHandle.standardError.write(bytes) }
    }
}
