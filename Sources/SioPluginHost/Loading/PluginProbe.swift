#if canImport(Glibc)
import Glibc
#endif
import CSioPlugin

/// Maps a plugin file in a short-lived child process before the server maps it.
///
/// The ELF check keeps out what it can name; the dynamic loader trusts far more of a file than
/// that (relocations, hash tables, version records), and a file corrupt there can crash it. The
/// child runs `dlopen` and `dlsym` on the private copy and nothing else — no plugin function,
/// no `init` — so its death by a signal means the loader itself cannot take the file, and the
/// file is refused while the server goes on.
public struct PluginProbe: Sendable {
    /// The child's command line before the file's path: `sio probe-plugin`.
    public var command: [String]
    /// Past this the child is killed and the file refused.
    public var timeout: Duration = .seconds(10)

    public init(command: [String]) {
        self.command = command
    }

    enum Verdict: Equatable {
        /// The loader took the file, or refused it cleanly (the server's own `dlopen` says why).
        case survived
        case crashed(signal: Int32)
        /// The child ended otherwise than the two ways it may: treated as a crash.
        case failed(status: Int32)
        case hung
        case cannotRun(String)
    }

    func run(_ path: String) -> Verdict {
        let arguments = command + [path]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // The child's stdout is a pipe whose far end closes when the child ends: the parent
        // sleeps in poll() until then (or the timeout) instead of asking waitpid every
        // millisecond.
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return .cannotRun("pipe failed: errno \(errno)") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        defer { close(ends[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var environment = ChildEnvironment.make()
        defer { for pointer in environment { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, &argv, &environment)
        close(ends[1])
        guard spawned == 0 else { return .cannotRun("cannot start the probe process \(command[0]): errno \(spawned)") }

        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        waiting: while true {
            let left = deadline - ContinuousClock.now
            let milliseconds = max(0, Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            var poller = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready > 0 {
                // Whatever the child prints is read and dropped; end of file means it ended.
                let count = buffer.withUnsafeMutableBytes { read(ends[0], $0.baseAddress, $0.count) }
                if count > 0 || (count < 0 && errno == EINTR) { continue }
                break waiting
            }
            // The time is up; a child that ended while a descendant keeps the pipe open is not hung.
            if waitpid(pid, &status, WNOHANG) == pid { return Self.verdict(status) }
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            return .hung
        }
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return .cannotRun("waitpid failed: errno \(errno)") }
        }
        return Self.verdict(status)
    }

    private static func verdict(_ status: Int32) -> Verdict {
        let signal = status & 0x7f
        if signal != 0 && signal != 0x7f { return .crashed(signal: signal) }
        let code = (status >> 8) & 0xff
        return code == 0 || code == Self.refusedCleanly ? .survived : .failed(status: code)
    }

    /// The child's exit status when the loader or the entry refuses the file cleanly.
    static let refusedCleanly: Int32 = 3

    /// The child's side: maps the file, calls its entry and reads the description the host
    /// will read (a corrupt relocation shows up as a wild pointer here). Exits 0 when all of
    /// that works, `refusedCleanly` when the loader or the entry refuses; a crash speaks for
    /// itself, and any other status counts as one.
    public static func childMain(path: String) -> Never {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL), let symbol = dlsym(handle, SIO_PLUGIN_ENTRY_SYMBOL) else {
            exit(refusedCleanly)
        }
        guard let info = unsafeBitCast(symbol, to: sio_plugin_entry_fn.self)() else { exit(refusedCleanly) }
        let nameEnd = MemoryLayout<sio_plugin_info>.offset(of: \.name)! + MemoryLayout<UnsafeRawPointer>.size
        guard info.pointee.struct_size >= nameEnd else { exit(refusedCleanly) }
        let version = info.pointee.struct_size >= nameEnd + 8 ? info.pointee.version : nil
        if let name = info.pointee.name { _ = strlen(name) }
        if let version { _ = strlen(version) }
        exit(0)
    }
}
