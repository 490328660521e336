import CSioPlugin

/// What a host function reported. A struct, so that new reasons can be added without breaking
/// a plugin's exhaustive `switch`; match with `catch SioError.noSocket` or `==`.
public struct SioError: Error, Hashable, CustomStringConvertible {
    private enum Base: Hashable {
        case noSocket, invalid, state, notFound, notLoaded, unsupported, other(Int32)
    }

    private let base: Base

    /// Nobody is there: the socket is gone, the channel or namespace has no socket.
    public static let noSocket = SioError(base: .noSocket)
    /// An argument the host refused (malformed JSON, an empty channel name, …).
    public static let invalid = SioError(base: .invalid)
    /// Not allowed now (after the socket finished, outside a handler, …).
    public static let state = SioError(base: .state)
    public static let notFound = SioError(base: .notFound)
    /// An out-of-band call before the host initialised the plugin.
    public static let notLoaded = SioError(base: .notLoaded)
    /// The server speaks an older ABI minor version that lacks the call.
    public static let unsupported = SioError(base: .unsupported)

    /// Lets `catch SioError.noSocket { … }` match a thrown error.
    public static func ~= (pattern: SioError, value: any Error) -> Bool {
        (value as? SioError) == pattern
    }

    static func check(_ status: sio_status) throws {
        switch status {
        case SIO_OK: return
        case SIO_ERR_NO_SOCKET: throw SioError.noSocket
        case SIO_ERR_INVALID: throw SioError.invalid
        case SIO_ERR_STATE: throw SioError.state
        case SIO_ERR_NOT_FOUND: throw SioError.notFound
        default: throw SioError(base: .other(status))
        }
    }

    public var description: String {
        switch base {
        case .noSocket: return "no socket"
        case .invalid: return "invalid argument"
        case .state: return "not allowed now"
        case .notFound: return "not found"
        case .notLoaded: return "plugin not initialised"
        case .unsupported: return "the server's ABI lacks this call"
        case .other(let status): return "host error \(status)"
        }
    }
}
