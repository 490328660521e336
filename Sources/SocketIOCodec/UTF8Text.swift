/// Text from bytes that must be valid UTF-8.
///
/// `String(validating:as:)` is generic; called from code the compiler does not specialize it
/// for, it looks its metadata up on every call, which cost a tenth of a relayed message. ASCII,
/// what nearly every name and payload string is, needs no validation at all.
public enum UTF8Text {
    public static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var ascii = true
        for byte in bytes where byte >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    public static func string(_ bytes: UnsafeRawBufferPointer) -> String? {
        string(bytes.bindMemory(to: UInt8.self))
    }
}
