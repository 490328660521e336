#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The admin endpoint could not bind: says where, and how to choose otherwise.
public struct AdminBindError: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var reason: Error

    public var description: String {
        let why = (reason as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(reason)"
        return "cannot bind the admin endpoint on \(host):\(port): \(why) (choose another with --admin-port, or turn it off with --no-admin)"
    }
}
