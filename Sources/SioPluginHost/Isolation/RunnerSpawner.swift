#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Starts plugin runners from one thread that lives as long as the server.
///
/// A runner asks the kernel for SIGKILL when its parent goes (`PR_SET_PDEATHSIG`), so that a
/// server killed with SIGKILL leaves no runner behind; but Linux ties that to the thread that
/// created the child, not the process: a runner started from a pool thread was killed when the
/// pool retired the thread, seconds later. Every spawn goes through this thread instead.
final class RunnerSpawner: @unchecked Sendable {
    static let shared = RunnerSpawner()

    private let condition = NSCondition()
    private var requests: [(run: () -> Void, done: DispatchSemaphore)] = []

    private init() {
        let thread = Thread { [self] in serve() }
        thread.name = "sio-runner-spawner"
        thread.start()
    }

    /// Runs `body` (a `posix_spawn`) on the spawner thread and returns its result.
    func run<T>(_ body: @escaping () -> T) -> T {
        var result: T?
        let done = DispatchSemaphore(value: 0)
        condition.lock()
        requests.append(({ result = body() }, done))
        condition.signal()
        condition.unlock()
        done.wait()
        return result!
    }

    private func serve() {
        while true {
            condition.lock()
            while requests.isEmpty { condition.wait() }
            let request = requests.removeFirst()
            condition.unlock()
            request.run()
            request.done.signal()
        }
    }
}
