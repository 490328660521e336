/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Strict because everything it accepts is forwarded to other clients and to plugins, and a
/// lenient parser would let one client hand malformed JSON to everybody else. Depth is bounded
/// so that hostile input (`[[[[...`) cannot exhaust the stack.
struct JSONParser {
    static let maximumDepth = 128

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(CodecError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw .invalidJSON(at: parser.index) }
        return value
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(CodecError) -> JSONValue {
        guard index < bytes.count else { throw .invalidJSON(at: index) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw .invalidJSON(at: index)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(CodecError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw .invalidJSON(at: index) }
        let base = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != base[offset] {
            throw .invalidJSON(at: index + offset)
        }
        index += count
    }

    private mutating func enter() throws(CodecError) {
        depth += 1
        if depth > Self.maximumDepth { throw .nestingTooDeep }
    }

    private mutating func parseArray() throws(CodecError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw .invalidJSON(at: index) }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw .invalidJSON(at: index)
            }
        }
    }

    private mutating func parseObject() throws(CodecError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var members: [(String, JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw .invalidJSON(at: index) }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw .invalidJSON(at: index) }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            guard index < bytes.count else { throw .invalidJSON(at: index) }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw .invalidJSON(at: index)
            }
        }
    }

    private mutating func parseNumber() throws(CodecError) -> JSONValue {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw .invalidJSON(at: index) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        } else {
            throw .invalidJSON(at: index)
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw .invalidJSON(at: index) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw .invalidJSON(at: index) }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func parseString() throws(CodecError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, so the bytes are the string once validated as UTF-8.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                guard let string = UTF8Text.string(slice) else { throw .invalidUTF8 }
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw .invalidJSON(at: index) }
            index += 1
        }
        var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = scalars.withUnsafeBufferPointer({ UTF8Text.string($0) }) else { throw .invalidUTF8 }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw .invalidJSON(at: index) }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append(0x22)
                case UInt8(ascii: "\\"): scalars.append(0x5C)
                case UInt8(ascii: "/"): scalars.append(0x2F)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = UInt32(try parseHex4())
                    if (0xD800...0xDBFF).contains(code) {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                            bytes[index + 1] == UInt8(ascii: "u")
                        else { throw .invalidJSON(at: index) }
                        index += 2
                        let low = UInt32(try parseHex4())
                        guard (0xDC00...0xDFFF).contains(low) else { throw .invalidJSON(at: index) }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw .invalidJSON(at: index)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw .invalidJSON(at: index) }
                    scalars.append(contentsOf: UTF8.encode(scalar)!)
                default:
                    throw .invalidJSON(at: index - 1)
                }
            default:
                if byte < 0x20 { throw .invalidJSON(at: index) }
                scalars.append(byte)
                index += 1
            }
        }
        throw .invalidJSON(at: index)
    }

    private mutating func parseHex4() throws(CodecError) -> UInt16 {
        guard bytes.count - index >= 4 else { throw .invalidJSON(at: index) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .invalidJSON(at: index)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }
}

extension JSONValue {
    /// Parses one JSON document; trailing bytes other than whitespace are an error.
    public init(parsing bytes: some Collection<UInt8>) throws(CodecError) {
        let result: Result<JSONValue, CodecError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(CodecError) -> JSONValue in try JSONParser.parse(buffer) }
        }
        if let result {
            self = try result.get()
        } else {
            let copy = Array(bytes)
            let result = copy.withUnsafeBufferPointer { buffer in
                Result { () throws(CodecError) -> JSONValue in try JSONParser.parse(buffer) }
            }
            self = try result.get()
        }
    }

    /// Bytes as they lie, for callers in other modules: the generic form above runs unspecialized
    /// there, looking up generic metadata on every call.
    public init(parsing bytes: UnsafeRawBufferPointer) throws(CodecError) {
        self = try JSONParser.parse(UnsafeBufferPointer(start: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: bytes.count))
    }

    public init(parsing bytes: [UInt8]) throws(CodecError) {
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(CodecError) -> JSONValue in try JSONParser.parse(buffer) }
        }
        self = try result.get()
    }

    public init(parsing string: String) throws(CodecError) {
        var string = string
        let result = string.withUTF8 { buffer in
            Result { () throws(CodecError) -> JSONValue in try JSONParser.parse(buffer) }
        }
        self = try result.get()
    }
}
