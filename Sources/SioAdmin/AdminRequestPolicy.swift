import Foundation

/// Which requests the admin endpoint serves at all, decided from the request head alone.
///
/// The threat: the endpoint changes what every client receives (broadcast, send, reload), and a
/// tokenless one listens on loopback, where any web page the operator visits can reach it. A
/// page can send a "simple" cross-origin POST (text/plain, no preflight), and a DNS-rebinding
/// page can even read answers, with its own name in `Host`. So: a token when one is set; without
/// one, a `Host` that names loopback; never a foreign `Origin`; and state-changing requests only
/// with a JSON body type, which a browser cannot send cross-origin without a preflight this
/// endpoint never answers. The `sio` CLI passes all of these by construction.
struct AdminRequestPolicy: Sendable {
    var token: String?

    struct Refusal: Equatable {
        var status: Int
        var error: String
        var body: String { #"{"error":"\#(error)"}"# }
    }

    /// The admin page itself: code and no data, so a browser, which cannot put a token on a
    /// navigation, may load it; the page then asks for the token and sends it with every
    /// request for data or action, each checked as any other.
    static let pagePaths: Set<String> = ["/", "/index.html", "/admin.js", "/admin.css"]

    /// nil when the request may be served.
    func check(method: String, path: String, host: String?, origin: String?, contentType: String?, authorization: String?,
               port: Int) -> Refusal? {
        let isPage = method == "GET" && Self.pagePaths.contains(String(path.prefix { $0 != "?" }))
        if let token {
            guard isPage || authorization.map({ Self.constantTimeEqual($0, "Bearer \(token)") }) == true else {
                return Refusal(status: 401, error: "missing or wrong admin token")
            }
        } else {
            guard let host, Self.isLoopback(host: host, port: port) else {
                return Refusal(status: 403, error: "Host not allowed: the endpoint answers to loopback names only")
            }
        }
        if let origin, origin != "http://\(host ?? "")" {
            return Refusal(status: 403, error: "cross-origin request refused")
        }
        if method != "GET" && method != "HEAD" {
            let type = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            guard type == "application/json" else {
                return Refusal(status: 415, error: "a request that changes something must send Content-Type: application/json")
            }
        }
        return nil
    }

    /// `127.0.0.1`, `localhost`, `[::1]` (any 127/8 address), with no port or with ours.
    static func isLoopback(host: String, port: Int) -> Bool {
        var name = Substring(host.lowercased())
        if let colon = name.lastIndex(of: ":"), !name.hasSuffix("]"), name.first != "[" || name.contains("]:") {
            guard name[name.index(after: colon)...] == Substring(String(port)) else { return false }
            name = name[..<colon]
        }
        if name == "localhost" || name == "[::1]" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
