#if canImport(Glibc)
import Glibc
#endif

/// The environment for a child the server starts (a probe, a plugin runner): the server's own,
/// with Swift's crash backtracer off, so that a child that crashes dies of its signal at once
/// and the server can name the signal (the backtracer would catch it and exit its own way, and
/// slowly).
enum ChildEnvironment {
    /// A NULL-terminated `envp`; free each entry with `free`.
    static func make() -> [UnsafeMutablePointer<CChar>?] {
        var environment: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no")]
        var index = 0
        while let variable = environ[index] {
            if strncmp(variable, "SWIFT_BACKTRACE=", 16) != 0 { environment.append(strdup(variable)) }
            index += 1
        }
        environment.append(nil)
        return environment
    }
}
