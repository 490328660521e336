import NIOCore
import SocketIOCodec
import XCTest

/// Random and mutated input for every decoder: each must return a value or throw `CodecError`,
/// never trap. Seeds are fixed so a failure reproduces; `SIO_FUZZ_ITERATIONS` runs longer.
final class FuzzTests: XCTestCase {
    private let iterations = Int(ProcessInfo.processInfo.environment["SIO_FUZZ_ITERATIONS"] ?? "") ?? 20_000

    private let corpus = [
        "0", "0/admin,{\"token\":\"123\"}", "2[\"foo\",{\"a\":[1,2.5e3,null,true]}]", "212[\"foo\"]",
        "3/admin,13[\"bar\"]", "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", "4{\"message\":\"x\"}", "1/admin,",
        "4hello\u{1e}bAQIDBA==\u{1e}2probe", "[\"\\ud83d\\ude00\",\"\\n\"]", "{\"a\":{\"b\":{\"c\":[]}}}",
    ].map { Array($0.utf8) }

    private func exercise(_ bytes: [UInt8]) {
        let buffer = ByteBuffer(bytes: bytes)
        _ = try? JSONValue(parsing: bytes)
        _ = try? SocketIOPacket.decode(buffer)
        _ = try? EngineIOPacket.decodeText(buffer)
        _ = try? PollingPayload.decode(buffer)
        var assembler = BinaryPacketAssembler()
        _ = try? assembler.receiveText(buffer)
        _ = try? assembler.receiveBinary(buffer)
    }

    func testRandomBytes() {
        var random = SplitMix64(seed: 1)
        for _ in 0..<iterations {
            let length = random.next(below: 64)
            exercise((0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
    }

    func testRandomProtocolAlphabet() {
        // Bytes the grammars care about, so that the decoders get past their first checks.
        let alphabet = Array("0123456789-/,[]{}\":.eE+tfnrul\\ab \u{1e}=".utf8)
        var random = SplitMix64(seed: 2)
        for _ in 0..<iterations {
            let length = random.next(below: 48)
            exercise((0..<length).map { _ in alphabet[random.next(below: alphabet.count)] })
        }
    }

    func testMutatedValidPackets() {
        var random = SplitMix64(seed: 3)
        for _ in 0..<iterations {
            var bytes = corpus[random.next(below: corpus.count)]
            for _ in 0...random.next(below: 4) {
                let position = bytes.isEmpty ? 0 : random.next(below: bytes.count)
                switch random.next(below: 4) {
                case 0 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
                case 2 where !bytes.isEmpty: bytes.remove(at: position)
                default: bytes = Array(bytes.prefix(position))
                }
            }
            exercise(bytes)
        }
    }
}
