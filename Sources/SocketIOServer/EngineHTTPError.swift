/// The Engine.IO handshake errors, with the codes and messages of the reference server, so that
/// clients that inspect them (and people reading logs) see what they expect.
struct EngineHTTPError: Error, Hashable {
    let code: Int
    let message: String
    let status: Int

    static let unknownTransport = EngineHTTPError(code: 0, message: "Transport unknown", status: 400)
    static let unknownSession = EngineHTTPError(code: 1, message: "Session ID unknown", status: 400)
    static let badHandshakeMethod = EngineHTTPError(code: 2, message: "Bad handshake method", status: 400)
    static let badRequest = EngineHTTPError(code: 3, message: "Bad request", status: 400)
    static let forbidden = EngineHTTPError(code: 4, message: "Forbidden", status: 403)
    static let unsupportedProtocolVersion = EngineHTTPError(code: 5, message: "Unsupported protocol version", status: 400)
    static let payloadTooLarge = EngineHTTPError(code: 3, message: "Payload too large", status: 413)

    var body: String { #"{"code":\#(code),"message":"\#(message)"}"# }
}
