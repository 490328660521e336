/// Session and socket ids: 20 random URL-safe characters (about 120 bits), the shape the
/// reference server uses, unguessable because `send(session id)` addresses sockets by them.
enum Identifier {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func make() -> String {
        // Two draws of 64 bits give 20 characters of 6 bits: one system call each, not twenty.
        var generator = SystemRandomNumberGenerator()
        var bits = (generator.next(), generator.next())
        var bytes = [UInt8](repeating: 0, count: 20)
        for i in 0..<10 {
            bytes[i] = alphabet[Int(bits.0 & 63)]
            bytes[i + 10] = alphabet[Int(bits.1 & 63)]
            bits.0 >>= 6
            bits.1 >>= 6
        }
        // Never a leading "-": `sio send -abc…` would read the id as an option (1 id in 64).
        if bytes[0] == UInt8(ascii: "-") { bytes[0] = alphabet[Int(bits.0 & 31)] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
