import SocketIOCodec

/// `json_get_string`'s path: dot-separated object keys and array indices.
enum JSONPath {
    static func lookup(_ path: String, in document: JSONValue) -> JSONValue? {
        var current = document
        for component in path.split(separator: ".", omittingEmptySubsequences: true) {
            switch current {
            case .array(let items):
                guard let index = Int(component), items.indices.contains(index) else { return nil }
                current = items[index]
            case .object:
                guard let next = current[String(component)] else { return nil }
                current = next
            default:
                return nil
            }
        }
        return current
    }
}

import NIOCore
