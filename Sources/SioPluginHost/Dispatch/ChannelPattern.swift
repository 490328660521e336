#if canImport(Glibc)
import Glibc
#endif
import CSioRegex
import NIOConcurrencyHelpers

/// A handler's channel binding: a regular expression matched at the start of channel names,
/// as Python's `re.match` does in the seed.
///
/// Channel names come from clients, so patterns run on RE2, which takes time linear in the name
/// whatever the pattern: `(a+)+$` against `aaaa…!` costs what any other pattern does. RE2 does
/// not run backreferences or lookaround; such a pattern is refused when the plugin registers
/// it, with RE2's reason (docs/events.md, "Pattern syntax").
///
/// Matches are memoised: the same few channels are tested on every event of a socket.
final class ChannelPattern: @unchecked Sendable {
    struct CompileError: Error, CustomStringConvertible {
        var description: String
    }

    let source: String
    private let regex: OpaquePointer
    private let memo = NIOLockedValueBox<[String: Bool]>([:])
    private static let memoLimit = 10_000

    init(_ source: String) throws(CompileError) {
        self.source = source
        var error: UnsafeMutablePointer<CChar>?
        var text = source
        let compiled = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { sio_regex_compile($0.baseAddress, $0.count, &error) }
        }
        guard let compiled else {
            let reason = error.map { String(cString: $0) } ?? "does not compile"
            free(error)
            throw CompileError(description: reason)
        }
        regex = compiled
    }

    deinit {
        sio_regex_free(regex)
    }

    func matches(_ channel: String) -> Bool {
        if let known = memo.withLockedValue({ $0[channel] }) { return known }
        var name = channel
        let result = name.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { sio_regex_match_prefix(regex, $0.baseAddress, $0.count) == 1 }
        }
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
