import Foundation

enum PluginFile {
    /// FNV-1a over the content: enough to tell "the same file again" from "a new build".
    static func hash(_ data: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    /// Runs in a process of its own whatever the server's mode: `NAME.isolated.so`.
    static let isolatedSuffix = ".isolated.so"

    /// The `*.so` files of `directory`, in the order plugins run: by file name.
    static func list(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".so") && !$0.hasPrefix(".") }
            .sorted()
            .map { directory + "/" + $0 }
    }
}
