import SocketIOCodec
import XCTest

final class JSONTests: XCTestCase {
    func testParsesEveryKind() throws {
        let value = try JSONValue(parsing: #" {"a": [1, -2.5e+3, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"], "b": {}} "#)
        XCTAssertEqual(value["a"], [1, .number("-2.5e+3"), true, false, nil, "x\"\\/\u{8}\u{c}\n\r\té😀"])
        XCTAssertEqual(value["b"], .object([]))
    }

    func testKeepsNumberTextAndMemberOrder() throws {
        let text = #"{"z":12345678901234567890,"a":0.1,"m":[]}"#
        XCTAssertEqual(try JSONValue(parsing: text).jsonText, text)
    }

    func testSerializesControlCharactersAndQuotes() {
        let value: JSONValue = .string("a\"b\\c\n\u{1}")
        XCTAssertEqual(value.jsonText, #""a\"b\\c\n\u0001""#)
    }

    func testRejectsInvalidDocuments() {
        let invalid = [
            "", " ", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "1e", "+1", "[1 2]", "{\"a\" 1}", "{1:2}",
            "\"unterminated", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"tab\there\"", "tru", "nul",
            "[1]x", "[", "]", "{", "\"\\ud800\\u0041\"", "NaN", "Infinity",
        ]
        for text in invalid {
            XCTAssertThrowsError(try JSONValue(parsing: text), "accepted \(text.debugDescription)")
        }
    }

    func testRejectsInvalidUTF8() {
        // After ASCII, at the end, alone, and a truncated four-byte sequence.
        for bytes: [UInt8] in [[0x22, 0xC3, 0x28, 0x22], [0x22, 0x61, 0x62, 0xFF, 0x22], [0x22, 0x80, 0x22],
                               [0x22, 0x61, 0xF0, 0x9F, 0x98, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22]] {
            XCTAssertThrowsError(try JSONValue(parsing: bytes), "accepted \(bytes)") { error in
                XCTAssertEqual(error as? CodecError, .invalidUTF8)
            }
        }
        XCTAssertEqual(try JSONValue(parsing: Array(#"["ascii","é😀"]"#.utf8)), ["ascii", "é😀"])
    }

    func testBoundsNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertThrowsError(try JSONValue(parsing: deep)) { error in
            XCTAssertEqual(error as? CodecError, .nestingTooDeep)
        }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertNoThrow(try JSONValue(parsing: fine))
    }

    /// Property: any value the serializer writes, the parser reads back equal.
    func testRoundTripsRandomValues() throws {
        var random = SplitMix64(seed: 42)
        for _ in 0..<2_000 {
            let value = randomJSON(&random, depth: 0)
            let text = value.jsonText
            XCTAssertEqual(try JSONValue(parsing: text), value, text)
        }
    }
}

func randomJSON(_ random: inout SplitMix64, depth: Int) -> JSONValue {
    switch random.next(below: depth > 3 ? 5 : 7) {
    case 0: return .null
    case 1: return .bool(random.next(below: 2) == 0)
    case 2: return .number(String(Int(truncatingIfNeeded: random.next()) >> random.next(below: 60)))
    case 3: return .number(String(Double(random.next(below: 100_000)) / 7.0))
    case 4: return .string(randomString(&random))
    case 5: return .array((0..<random.next(below: 5)).map { _ in randomJSON(&random, depth: depth + 1) })
    default:
        return .object((0..<random.next(below: 5)).map { _ in (randomString(&random), randomJSON(&random, depth: depth + 1)) })
    }
}

func randomString(_ random: inout SplitMix64) -> String {
    let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{0}", "\u{1f}", "é", "€", "😀", "\u{2028}"]
    return String(String.UnicodeScalarView((0..<random.next(below: 12)).map { _ in pool[random.next(below: pool.count)] }))
}

/// A small seeded generator so that every randomised test is reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
