import NIOConcurrencyHelpers

/// A handler's channel binding: a regular expression matched at the start of channel names,
/// as Python's `re.match` does in the seed.
///
/// Matches are memoised: the same few channels are tested on every event of a socket, and
/// regex evaluation is far costlier than a dictionary lookup.
final class ChannelPattern: @unchecked Sendable {
    let source: String
    private let regex: Regex<AnyRegexOutput>
    private let memo = NIOLockedValueBox<[String: Bool]>([:])
    private static let memoLimit = 10_000

    init(_ source: String) throws {
        self.source = source
        self.regex = try Regex(source)
    }

    func matches(_ channel: String) -> Bool {
        if let known = memo.withLockedValue({ $0[channel] }) { return known }
        let result = (try? regex.prefixMatch(in: channel)) != nil
        memo.withLockedValue { memo in
            if memo.count >= Self.memoLimit { memo.removeAll(keepingCapacity: true) }
            memo[channel] = result
        }
        return result
    }

    func matchesAny(_ channels: some Sequence<String>) -> Bool {
        channels.contains(where: matches)
    }
}
