import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SocketIOCodec

/// Talks to a running server's admin endpoint, for the CLI's client commands.
struct AdminClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let host: String
    let port: Int
    let token: String?

    /// `http://HOST:PORT` (the scheme optional).
    init(url: String, token: String?) throws {
        var rest = Substring(url)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            throw Failure(description: "admin address must be HOST:PORT, got \(url)")
        }
        self.host = String(rest[..<colon])
        self.port = port
        self.token = token
    }

    /// Sends one request; returns the HTTP status and the parsed JSON body.
    func request(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil) async throws -> (Int, JSONValue) {
        let response = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: (Int, [UInt8]).self)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(response: response))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            let failure = Failure(description: "cannot reach the admin endpoint at \(host):\(port) (is sio serve running?): \(SioCommand.oneLine(error))")
            response.fail(failure)  // nobody will answer it: no promise is left behind
            throw failure
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Connection", value: "close")
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        let payload = ByteBuffer(string: body?.jsonText ?? "")
        headers.add(name: "Content-Length", value: String(payload.readableBytes))
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(payload)), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        let (status, bytes) = try await response.futureResult.get()
        _ = try? await channel.close().get()
        let json = (try? JSONValue(parsing: bytes)) ?? .object([("error", .string(String(decoding: bytes, as: UTF8.self)))])
        return (status, json)
    }
}

/// Gathers one HTTP response and completes `response` with it.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let response: EventLoopPromise<(Int, [UInt8])>
    private var status = 0
    private var body: [UInt8] = []

    init(response: EventLoopPromise<(Int, [UInt8])>) {
        self.response = response
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let chunk): body += chunk.readableBytesView
        case .end: response.succeed((status, body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        response.fail(AdminClient.Failure(description: "the admin endpoint closed the connection"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        response.fail(error)
        context.close(promise: nil)
    }
}

/// Confined to its channel's event loop, as NIO's own handlers are.
@available(*, unavailable)
extension ResponseCollector: Sendable {}
