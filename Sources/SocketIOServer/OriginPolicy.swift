/// Which pages may open a WebSocket to the server.
///
/// With `--cors-origin` the listed origins (or any, for `*`); without, the server's own origin
/// only, as python-socketio does. A request without `Origin` is not from a browser page and is
/// allowed. "Own origin" compares the `Origin`'s host with `Host`, and the ports when `Host`
/// has one: behind a proxy that passes `Host` without its port (nginx's `$host`) the names
/// decide.
struct OriginPolicy: Sendable {
    var allowed: [String]

    func allows(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        if allowed.contains("*") || allowed.contains(origin) { return true }
        guard let host, let (originName, originPort) = Self.split(authority: Self.authority(of: origin)) else { return false }
        guard let (hostName, hostPort) = Self.split(authority: host) else { return false }
        return originName == hostName && (hostPort == nil || hostPort == originPort ?? Self.defaultPort(origin))
    }

    private static func authority(of origin: String) -> Substring {
        let rest = origin.range(of: "://").map { origin[$0.upperBound...] } ?? origin[...]
        return rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? rest
    }

    private static func defaultPort(_ origin: String) -> String {
        origin.lowercased().hasPrefix("https://") ? "443" : "80"
    }

    /// `name` and `port` of `name[:port]` or `[v6][:port]`, the name lower-cased.
    private static func split(authority: some StringProtocol) -> (String, String?)? {
        let text = authority.lowercased()
        guard !text.isEmpty else { return nil }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let name = String(text[...close])
            let rest = text[text.index(after: close)...]
            return (name, rest.hasPrefix(":") ? String(rest.dropFirst()) : nil)
        }
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), parts.count == 2 ? String(parts[1]) : nil)
    }
}
