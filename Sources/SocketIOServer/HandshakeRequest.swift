import Foundation
import NIOHTTP1

/// The HTTP request that opened an Engine.IO session, as handlers see it.
public struct HandshakeRequest: Sendable {
    public var method: String
    public var path: String
    /// The raw query string, without the `?`.
    public var query: String
    public var headers: [(name: String, value: String)]
    /// The peer's address, or the first `X-Forwarded-For` hop when the peer is a trusted proxy.
    public var remoteAddress: String

    public init(method: String, path: String, query: String, headers: [(name: String, value: String)], remoteAddress: String) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.remoteAddress = remoteAddress
    }

    init(head: HTTPRequestHead, peer: String, trustedProxies: Set<String>) {
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.init(
            method: head.method.rawValue,
            path: String(parts[0]),
            query: parts.count > 1 ? String(parts[1]) : "",
            headers: head.headers.map { ($0.name, $0.value) },
            remoteAddress: Self.clientAddress(peer: peer, forwardedFor: head.headers[canonicalForm: "x-forwarded-for"].map(String.init),
                                              trustedProxies: trustedProxies)
        )
    }

    /// The client's address: the peer, unless the peer is a trusted proxy; then the nearest
    /// `X-Forwarded-For` hop that is not itself a trusted proxy.
    static func clientAddress(peer: String, forwardedFor: [String], trustedProxies: Set<String>) -> String {
        guard trustedProxies.contains(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        return hops.reversed().first(where: { !$0.isEmpty && !trustedProxies.contains($0) }) ?? peer
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first(where: { $0.name.lowercased() == lower })?.value
    }

    /// Query parameters, percent-decoded, first occurrence wins.
    public func queryParameter(_ name: String) -> String? {
        QueryString.parse(query)[name]
    }
}
