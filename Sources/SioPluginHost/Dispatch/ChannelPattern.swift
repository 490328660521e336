#if canImport(Glibc)
import Glibc
#endif
import CSioRegex

/// A handler's channel binding: a regular expression matched at the start of channel names,
/// as Python's `re.match` does in the seed.
///
/// Channel names come from clients, so patterns run on RE2, which takes time linear in the name
/// whatever the pattern: `(a+)+$` against `aaaa…!` costs what any other pattern does. RE2 does
/// not run backreferences or lookaround; such a pattern is refused when the plugin registers
/// it, with RE2's reason (docs/events.md, "Pattern syntax").
///
/// Matches are not memoised: a memo shared by the loops needs a lock per handler per event,
/// which costs what RE2 takes to match a channel name of a few dozen bytes.
///
/// `@unchecked Sendable`: a compiled RE2 is immutable and may be matched from any thread.
final class ChannelPattern: @unchecked Sendable {
    struct CompileError: Error, CustomStringConvertible {
        var description: String
    }

    let source: String
    private let regex: OpaquePointer

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
        var name = channel
        return name.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { sio_regex_match_prefix(regex, $0.baseAddress, $0.count) == 1 }
        }
    }

    func matchesAny(_ channels: some Sequence<String>) -> Bool {
        channels.contains(where: matches)
    }
}
