import Foundation
import NIOHTTP1

/// The HTTP request that opened an Engine.IO session, as handlers see it.
///
/// It lives as long as its sockets, idle or not, and handlers written in C read it on every
/// event, so it is stored once, in one allocation, in the form C reads: a table of
/// `{pointer, length}` pairs (the layout of a C `{const char *, size_t}`: method, path, query,
/// remote address, then each header's name and value), followed by the strings it points to,
/// each NUL-terminated. The plugin host hands that table to plugins as it is
/// (`cStringTable`), instead of keeping a second copy of the request.
public struct HandshakeRequest: Sendable {
    private let storage: Storage

    public init(method: String, path: String, query: String, headers: [(name: String, value: String)], remoteAddress: String) {
        storage = Storage([method, path, query, remoteAddress] + headers.flatMap { [$0.name, $0.value] })
    }

    public var method: String { storage.string(0) }
    public var path: String { storage.string(1) }
    /// The raw query string, without the `?`.
    public var query: String { storage.string(2) }
    /// The peer's address, or the first `X-Forwarded-For` hop when the peer is a trusted proxy.
    public var remoteAddress: String { storage.string(3) }
    public var headerCount: Int { (storage.count - 4) / 2 }
    public var headers: [(name: String, value: String)] {
        (0..<headerCount).map { (storage.string(4 + 2 * $0), storage.string(5 + 2 * $0)) }
    }

    /// The pairs described above: four, then two per header. Valid while this request (any copy
    /// of it) is alive; never written after it was built.
    public var cStringTable: UnsafeRawPointer { UnsafeRawPointer(storage.block) }

    /// The one allocation behind a request and its copies.
    ///
    /// `@unchecked Sendable`: written once, in `init`, and only read after.
    private final class Storage: @unchecked Sendable {
        let block: UnsafeMutableRawPointer
        let count: Int
        private static let pairSize = MemoryLayout<UnsafePointer<CChar>?>.stride + MemoryLayout<Int>.stride

        init(_ strings: [String]) {
            count = strings.count
            let textOffset = strings.count * Self.pairSize
            let size = textOffset + strings.reduce(0) { $0 + $1.utf8.count + 1 }
            block = .allocate(byteCount: size, alignment: MemoryLayout<Int>.alignment)
            var cursor = block + textOffset
            for (index, string) in strings.enumerated() {
                var string = string
                let length = string.withUTF8 { bytes -> Int in
                    if let base = bytes.baseAddress { cursor.copyMemory(from: base, byteCount: bytes.count) }
                    return bytes.count
                }
                cursor.storeBytes(of: 0, toByteOffset: length, as: UInt8.self)  // NUL, for C convenience
                let pointer: UnsafePointer<CChar>? = length == 0 ? nil : UnsafePointer(cursor.assumingMemoryBound(to: CChar.self))
                block.storeBytes(of: pointer, toByteOffset: index * Self.pairSize, as: UnsafePointer<CChar>?.self)
                block.storeBytes(of: length, toByteOffset: index * Self.pairSize + MemoryLayout<UnsafePointer<CChar>?>.stride, as: Int.self)
                cursor += length + 1
            }
        }

        deinit {
            block.deallocate()
        }

        func string(_ index: Int) -> String {
            let pointer = block.load(fromByteOffset: index * Self.pairSize, as: UnsafePointer<CChar>?.self)
            let length = block.load(fromByteOffset: index * Self.pairSize + MemoryLayout<UnsafePointer<CChar>?>.stride, as: Int.self)
            guard let pointer else { return "" }
            return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
        }
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
        for index in 0..<headerCount where storage.string(4 + 2 * index).lowercased() == lower {
            return storage.string(5 + 2 * index)
        }
        return nil
    }

    /// Query parameters, percent-decoded, first occurrence wins.
    public func queryParameter(_ name: String) -> String? {
        QueryString.parse(query)[name]
    }
}
