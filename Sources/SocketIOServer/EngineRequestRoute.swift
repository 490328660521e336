import NIOHTTP1

/// What an Engine.IO HTTP request asks for, decided from method and query alone.
enum EngineRequestRoute: Equatable {
    case handshake
    case poll(sid: String)
    case post(sid: String)
    case failure(EngineHTTPError)

    init(method: HTTPMethod, query: [String: String]) {
        guard query["EIO"] == "4" else {
            self = .failure(.unsupportedProtocolVersion)
            return
        }
        switch query["transport"] {
        case "polling": break
        // A WebSocket request reaches here only when the upgrade was refused.
        case "websocket":
            self = .failure(.badRequest)
            return
        default:
            self = .failure(.unknownTransport)
            return
        }
        guard let sid = query["sid"] else {
            self = method == .GET ? .handshake : .failure(.badHandshakeMethod)
            return
        }
        switch method {
        case .GET: self = .poll(sid: sid)
        case .POST: self = .post(sid: sid)
        default: self = .failure(.badRequest)
        }
    }
}
