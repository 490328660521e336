/// Why a plugin file was refused. The description is the one log line (and the `sio reload`
/// answer) an operator sees, so it always says what to fix.
public struct PluginLoadError: Error, Sendable, CustomStringConvertible {
    private enum Base: Sendable {
        case unsafePermissions(String)
        case notAPlugin(String)
        case missingEntrySymbol
        case badInfo(String)
        case abiMismatch(pluginMajor: UInt32)
        case initFailed(String)
        case registration([String])
        case unusableDirectory(String)
        case fromRunner(String)
    }

    private let base: Base

    static func unsafePermissions(_ why: String) -> Self { .init(base: .unsafePermissions(why)) }
    static func notAPlugin(_ why: String) -> Self { .init(base: .notAPlugin(why)) }
    static let missingEntrySymbol = Self(base: .missingEntrySymbol)
    static func badInfo(_ why: String) -> Self { .init(base: .badInfo(why)) }
    static func abiMismatch(pluginMajor: UInt32) -> Self { .init(base: .abiMismatch(pluginMajor: pluginMajor)) }
    static func initFailed(_ why: String) -> Self { .init(base: .initFailed(why)) }
    static func registration(_ errors: [String]) -> Self { .init(base: .registration(errors)) }
    static func unusableDirectory(_ why: String) -> Self { .init(base: .unusableDirectory(why)) }
    /// A plugin runner's refusal, worded there from these same errors.
    static func fromRunner(_ description: String) -> Self { .init(base: .fromRunner(description)) }

    public var description: String {
        switch base {
        case .unsafePermissions(let why): return "unsafe permissions: \(why)"
        case .notAPlugin(let why): return "not a loadable shared library: \(why)"
        case .missingEntrySymbol: return "not a sio plugin: no symbol sio_plugin_entry"
        case .badInfo(let why): return "invalid plugin description: \(why)"
        case .abiMismatch(let major):
            return "built for ABI major \(major), this server speaks ABI major \(SioABI.major); rebuild it against include/sio_plugin.h"
        case .initFailed(let why): return "init failed: \(why)"
        case .registration(let errors): return "invalid handler registration: " + errors.joined(separator: "; ")
        case .unusableDirectory(let why): return why
        case .fromRunner(let description): return description
        }
    }
}
