import Foundation
import Prometheus
import SioAdmin
import SioCluster
import SioPluginHost
import SocketIOCodec
import SocketIOServer

/// What the admin endpoint answers: the operations of `sio plugins`, `sio broadcast` and
/// `sio send`, as JSON over HTTP, the Prometheus metrics, and the admin page.
struct AdminRoutes: Sendable {
    let host: PluginHost
    let server: Server
    /// nil with `--no-metrics`: `/metrics` answers 404.
    let metrics: PrometheusCollectorRegistry?
    let recent: RecentProblems?
    /// With `--cluster`: its state in `/stats`.
    let cluster: PostgresCluster?

    func handle(_ request: AdminRequest) async -> AdminResponse {
        let parts = URLComponents(string: request.path)
        let path = parts?.path ?? request.path
        let query = Dictionary((parts?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
        switch (request.method, path) {
        case ("GET", _) where AdminPage.files[path] != nil:
            let file = AdminPage.files[path]!
            return AdminResponse(status: 200, body: String(decoding: file.body, as: UTF8.self), contentType: file.type)
        case ("GET", "/metrics"):
            guard let metrics else { return failure(404, "metrics are off (sio serve --no-metrics)") }
            await server.collectMetrics()
            var text: [UInt8] = []
            metrics.emit(into: &text)
            return AdminResponse(status: 200, body: String(decoding: text, as: UTF8.self), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case ("GET", "/errors"):
            return ok(["errors": recent?.json ?? .array([])])
        case ("GET", "/plugins"):
            let lastReloads = host.lastReloads
            var plugins = host.descriptions.map { plugin -> JSONValue in
                [
                    "file": .string(plugin.file), "name": .string(plugin.name), "version": .string(plugin.version),
                    "abi": .string(plugin.abi),
                    "handlers": .array(plugin.handlers.map { ["event": .string($0.event), "pattern": $0.pattern.map(JSONValue.string) ?? .null] }),
                    "last_reload": Self.json(lastReloads[plugin.file]),
                    "runner": plugin.runner.map(JSONValue.string) ?? .null,
                ]
            }
            // A file the last reload refused is not loaded, but the operator needs to see it.
            let loaded = Set(host.descriptions.map(\.file))
            for (file, record) in lastReloads.sorted(by: { $0.key < $1.key }) where !loaded.contains(file) && record.outcome != "removed" {
                plugins.append(["file": .string(file), "last_reload": Self.json(record)])
            }
            return ok(["plugins": .array(plugins)])
        case ("POST", "/disconnect"):
            guard let body = try? JSONValue(parsing: request.body), let id = body["socket_id"]?.stringValue else {
                return failure(400, "expected {\"socket_id\": ..., \"namespace\"?: ...}")
            }
            guard server.perform(.disconnect, onSocket: id, namespace: body["namespace"]?.stringValue ?? "/") else {
                return failure(404, "no socket with id \(id)")
            }
            return ok(["disconnected": .string(id)])
        case ("POST", "/join"), ("POST", "/leave"):
            guard let body = try? JSONValue(parsing: request.body), let id = body["socket_id"]?.stringValue,
                  let channel = ChannelName.validate(body["channel"]) else {
                return failure(400, "expected {\"socket_id\": ..., \"channel\": ..., \"namespace\"?: ...}")
            }
            let operation: SocketOperation = path == "/join" ? .join(channel) : .leave(channel)
            guard server.perform(operation, onSocket: id, namespace: body["namespace"]?.stringValue ?? "/") else {
                return failure(404, "no socket with id \(id)")
            }
            return ok([path == "/join" ? "joined" : "left": .string(channel), "socket_id": .string(id)])
        case ("GET", "/presence"):
            guard let channel = query["channel"], !channel.isEmpty else { return failure(400, "expected ?channel=NAME") }
            let members = server.presence(namespace: query["namespace"] ?? "/", channel: channel)
            return ok([
                "channel": .string(channel), "count": .number(members.count),
                "members": .array(members.map {
                    ["id": .string($0.id), "node": .string($0.node ?? cluster?.nodeID ?? "local"), "value": $0.value.map(JSONValue.string) ?? .null]
                }),
            ])
        case ("POST", "/reload"):
            let reports = await host.reload().map { report -> JSONValue in
                ["file": .string(report.file), "outcome": .string(report.outcome.summary)]
            }
            return ok(["plugins": .array(reports)])
        case ("GET", "/sockets"):
            let sockets = await server.sockets(channel: query["channel"], limit: query["limit"].flatMap { Int($0) }.map { max(0, $0) } ?? .max)
            return ok(["sockets": .array(sockets.map { socket -> JSONValue in
                [
                    "id": .string(socket.id), "namespace": .string(socket.namespace), "transport": .string(socket.transport),
                    "remote_address": .string(socket.remoteAddress), "channels": .array(socket.channels.map(JSONValue.string)),
                    "connected_at": .string(socket.connectedAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))),
                ]
            })])
        case ("GET", "/channels"):
            return ok(["channels": .array(server.channels.map {
                ["namespace": .string($0.namespace), "channel": .string($0.channel), "members": .number($0.members)]
            })])
        case ("GET", "/stats"):
            let statistics = server.statistics
            return ok([
                "sessions": .number(statistics.sessions),
                "sockets": .object(statistics.sockets.sorted { $0.key < $1.key }.map { ($0.key, .number($0.value)) }),
                "disconnects": .object(DisconnectReason.allCases.map { ($0.rawValue, .number(statistics.disconnects[$0] ?? 0)) }),
                "cluster": cluster.map { status in
                    let status = status.status
                    return [
                        "node": .string(status.node), "connected": .bool(status.connected),
                        "peers": .array(status.peers.map(JSONValue.string)), "remote_sockets": .number(status.remoteSockets),
                        "dropped": .number(status.dropped), "messages_sent": .number(status.messagesSent),
                        "notifications_sent": .number(status.notificationsSent), "rows_sent": .number(status.rowsSent),
                        "messages_received": .number(status.messagesReceived),
                    ]
                } ?? .null,
            ])
        case ("POST", "/broadcast"):
            guard let body = try? JSONValue(parsing: request.body), let message = body["message"] else {
                return failure(400, "expected {\"message\": ..., \"channel\"?: ..., \"namespace\"?: ...}")
            }
            let channel = body["channel"]?.stringValue
            return delivery(host.outOfBandBroadcast(message, namespace: body["namespace"]?.stringValue ?? "/", channel: channel))
        case ("POST", "/send"):
            guard let body = try? JSONValue(parsing: request.body), let message = body["message"],
                let id = body["session_id"]?.stringValue
            else {
                return failure(400, "expected {\"session_id\": ..., \"message\": ..., \"namespace\"?: ...}")
            }
            return delivery(host.outOfBandSend(message, namespace: body["namespace"]?.stringValue ?? "/", socketID: id))
        default:
            return failure(404, "no such admin operation: \(request.method) \(path)")
        }
    }

    private static func json(_ record: ReloadRecord?) -> JSONValue {
        guard let record else { return .null }
        return ["outcome": .string(record.outcome),
                "at": .string(record.at.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))]
    }

    private func delivery(_ result: DeliveryResult) -> AdminResponse {
        switch result {
        case .delivered(let count): return ok(["delivered": .number(count)])
        case .noSocket(let reason): return failure(404, reason)
        }
    }

    private func ok(_ value: JSONValue) -> AdminResponse {
        AdminResponse(status: 200, body: value.jsonText)
    }

    private func failure(_ status: Int, _ message: String) -> AdminResponse {
        AdminResponse(status: status, body: JSONValue.object([("error", .string(message))]).jsonText)
    }
}
