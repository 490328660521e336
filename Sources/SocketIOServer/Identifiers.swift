/// Session and socket ids: 20 random URL-safe characters (120 bits), the shape the reference
/// server uses, unguessable because `send(session id)` addresses sockets by them.
enum Identifier {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 20)
        for i in bytes.indices { bytes[i] = alphabet[Int(generator.next() & 63)] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
