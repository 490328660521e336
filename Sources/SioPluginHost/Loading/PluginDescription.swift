/// What `sio plugins` shows about one loaded plugin.
public struct PluginDescription: Sendable, Equatable, Codable {
    public struct Handler: Sendable, Equatable, Codable {
        public var event: String
        public var pattern: String?
    }

    public var file: String
    public var name: String
    public var version: String
    public var abi: String
    public var handlers: [Handler]
    /// Isolated mode: "serving", "restarting" (after a crash) or "failed" (crashed too often);
    /// nil in process.
    public var runner: String? = nil
}

/// The outcome of loading one file.
public struct PluginLoadReport: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case loaded(PluginDescription)
        case reloaded(PluginDescription)
        case unchanged(PluginDescription)
        case removed
        case refused(String)

        /// The word `sio reload` prints.
        public var summary: String {
            switch self {
            case .loaded: return "loaded"
            case .reloaded: return "reloaded"
            case .unchanged: return "unchanged"
            case .removed: return "removed"
            case .refused(let reason): return "refused: \(reason)"
            }
        }

        public var isRefused: Bool {
            if case .refused = self { return true }
            return false
        }
    }

    public var file: String
    public var outcome: Outcome
}

extension LoadedPlugin {
    static let eventNames = ["on_connect", "on_message", "on_subscribe", "on_unsubscribe", "on_error", "on_disconnect", "on_finish"]

    var description: PluginDescription {
        PluginDescription(
            file: file, name: name, version: version, abi: "\(abiMajor).\(abiMinor)",
            handlers: handlers.map { .init(event: Self.eventNames[Int($0.kind.rawValue)], pattern: $0.pattern?.source) })
    }
}
