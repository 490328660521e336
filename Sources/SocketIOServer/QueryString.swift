import Foundation

/// The query of a request URI, decoded: the first value of each key wins.
enum QueryString {
    static func parse(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = decode(kv[0])
            if result[key] == nil { result[key] = kv.count > 1 ? decode(kv[1]) : "" }
        }
        return result
    }

    static func decode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = s.utf8.makeIterator()
        while let b = utf8.next() {
            if b == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if b == UInt8(ascii: "%"), let h = utf8.next(), let l = utf8.next(), let hv = hex(h), let lv = hex(l) {
                bytes.append(hv << 4 | lv)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - 55
        default: return nil
        }
    }
}
