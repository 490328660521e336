#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A shared library mapped from a private copy of a plugin file.
///
/// The copy is what makes `cp new.so plugins/x.so` over a live file safe: the server never
/// maps the file in the plugins directory, so truncating it cannot SIGBUS the process. Each
/// copy gets a unique name, because glibc hands back the cached handle for a path it has open.
///
/// `@unchecked Sendable`: dlopen's handle may be used from any thread, and `isClosed` is set
/// once, by the reload that unmaps the image, under the host's reload lock.
final class PluginImage: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// Swift images must stay mapped: unloading Swift code leaves runtime metadata dangling.
    let containsSwift: Bool
    private var isClosed = false

    private init(handle: UnsafeMutableRawPointer, containsSwift: Bool) {
        self.handle = handle
        self.containsSwift = containsSwift
    }

    static func open(_ data: [UInt8], of file: String, into privateDirectory: String, serial: Int,
                     probe: PluginProbe?) throws(PluginLoadError) -> PluginImage {
        do {
            try ELFCheck.validate(data)
        } catch {
            throw .notAPlugin(error.description)
        }
        let name = (file as NSString).lastPathComponent
        let copy = "\(privateDirectory)/\(serial)-\(name)"
        guard FileManager.default.createFile(atPath: copy, contents: Data(data), attributes: [.posixPermissions: 0o500]) else {
            throw .notAPlugin("cannot write the private copy \(copy)")
        }
        defer { unlink(copy) }
        if let probe {
            switch probe.run(copy) {
            case .survived: break
            case .crashed(let signal): throw .notAPlugin("the dynamic loader crashed on it in a probe process (signal \(signal))")
            case .hung: throw .notAPlugin("the dynamic loader did not finish with it in a probe process within \(probe.timeout)")
            case .failed(let status): throw .notAPlugin("a probe process mapping it ended with status \(status)")
            case .cannotRun(let why): throw .notAPlugin(why)
            }
        }
        let containsSwift = Data(data).range(of: Data("libswiftCore.so".utf8)) != nil
        var flags = RTLD_NOW | RTLD_LOCAL
        if containsSwift { flags |= RTLD_NODELETE }
        guard let handle = dlopen(copy, flags) else {
            throw .notAPlugin(String(cString: dlerror()))
        }
        return PluginImage(handle: handle, containsSwift: containsSwift)
    }

    func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        dlsym(handle, name)
    }

    /// Unmaps a C image; Swift images stay (RTLD_NODELETE makes dlclose a no-op for them).
    func close() {
        guard !isClosed else { return }
        isClosed = true
        dlclose(handle)
    }
}
