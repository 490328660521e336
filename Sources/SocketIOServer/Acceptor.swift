#if canImport(Glibc)
import Glibc
#endif
import Atomics
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Accepts TCP connections on a thread of its own and hands each to a loop that is serving.
///
/// NIO's `ServerBootstrap` accepts on one of the server's loops and gives every connection the
/// group's next loop in turn: a handler stuck on a loop then stops all accepting (when it is the
/// accepting loop) and strands every n-th new client. Here accepting never runs on a server loop,
/// and `LoopHealth` skips stalled loops; the connection is registered with
/// `ClientBootstrap.withConnectedSocket` on the chosen loop, with the same options and pipeline.
final class Acceptor: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let localAddress: SocketAddress
    private let descriptor: Int32
    private let health: LoopHealth
    /// Each loop's bootstrap, used on that loop only.
    private let bootstraps: [ObjectIdentifier: NIOLoopBoundBox<ClientBootstrap>]
    private let stopped = ManagedAtomic<Bool>(false)
    private let logger: Logger
    /// How long accepting pauses when the process is out of file descriptors: the pending
    /// connection stays readable, so retrying at once would spin.
    static let backoff: useconds_t = 100_000

    init(host: String, port: Int, backlog: Int32, health: LoopHealth, loops: [EventLoop], logger: Logger,
         bootstrap: (EventLoop) -> sending ClientBootstrap) throws {
        self.logger = logger
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let family: Int32 = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockAddr { pointer, length in Glibc.bind(descriptor, pointer, socklen_t(length)) }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        guard bound == 0, listen(descriptor, backlog) == 0 else {
            let code = errno
            close(descriptor)
            throw Failure(description: "cannot listen on \(host):\(port): \(String(cString: strerror(code)))")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(descriptor, $0, &length) }
        }
        self.localAddress = SocketAddress(storage, host: host)
        self.descriptor = descriptor
        self.health = health
        var bootstraps: [ObjectIdentifier: NIOLoopBoundBox<ClientBootstrap>] = [:]
        for loop in loops { bootstraps[ObjectIdentifier(loop)] = .makeBoxSendingValue(bootstrap(loop), eventLoop: loop) }
        self.bootstraps = bootstraps
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.start()
    }

    /// Stops accepting and closes the listening socket.
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    private func run() {
        defer { close(descriptor) }
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        var lastBeat: UInt64 = 0
        var lastExhaustionLog: UInt64 = 0
        while !stopped.load(ordering: .relaxed) {
            let now = LoopHealth.now()
            if now &- lastBeat > 50_000_000 {
                health.beat()
                lastBeat = now
            }
            poller.revents = 0
            guard poll(&poller, 1, 100) > 0 else { continue }
            // Up to a batch per wake-up, as NIO's accepting channel does; each loop gets its
            // share of the batch in one task (one wake-up), and registers the channels itself.
            var batches: [ObjectIdentifier: (EventLoop, [Int32])] = [:]
            defer {
                for (key, (loop, connections)) in batches {
                    let bootstrap = bootstraps[key]!
                    loop.execute {
                        for connection in connections { bootstrap.value.withConnectedSocket(connection).whenFailure { _ in } }
                    }
                }
            }
            for _ in 0..<64 {
                // accept4 sets both flags in the same call: three fcntl calls less per connection.
                let connection = sio_accept4(descriptor, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
                guard connection >= 0 else {
                    let code = errno
                    if code == EINTR || code == ECONNABORTED { continue }
                    if code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                        if LoopHealth.now() &- lastExhaustionLog > 10_000_000_000 {
                            lastExhaustionLog = LoopHealth.now()
                            logger.warning("accepting paused: \(String(cString: strerror(code))); new connections wait until descriptors are freed")
                        }
                        usleep(Self.backoff)
                    }
                    break
                }
                let loop = health.next()
                batches[ObjectIdentifier(loop), default: (loop, [])].1.append(connection)
            }
        }
    }
}

extension SocketAddress {
    /// The address in `storage`, as `getsockname` returned it.
    init(_ storage: sockaddr_storage, host: String) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET6:
            self = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) } }
        default:
            self = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) } }
        }
    }
}

/// glibc's `accept4`, which the Glibc module does not export (it is behind `_GNU_SOURCE`).
@_silgen_name("accept4")
private func sio_accept4(_ socket: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?,
                         _ flags: Int32) -> Int32
