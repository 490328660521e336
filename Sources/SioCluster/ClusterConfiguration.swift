import Foundation

/// How a node joins its cluster (`sio serve --cluster URL`, or `SIO_CLUSTER`).
public struct ClusterConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// A directory holding PostgreSQL's Unix socket, when given (`?host=/dir` in the URL, as libpq
    /// takes it): then `host` and `port` name the socket file only.
    public var unixSocketDirectory: String?
    public var user: String
    public var password: String?
    public var database: String
    /// The NOTIFY channel, and the prefix of the payload table: nodes sharing both form one
    /// cluster, so several clusters may share one database (`?channel=NAME`).
    public var channel: String
    /// How often a node says it is alive.
    public var heartbeatInterval: Duration = .seconds(1)
    /// Silent longer than this, a node is taken for dead and its sockets leave presence.
    public var nodeTimeout: Duration = .seconds(5)
    /// Rows of the payload table older than this are deleted: every node has read them long before.
    public var payloadRetention: Duration = .seconds(60)
    /// The first and the longest wait between attempts to reach PostgreSQL.
    public var firstReconnectDelay: Duration = .milliseconds(100)
    public var longestReconnectDelay: Duration = .seconds(5)

    public struct URLError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?channel=NAME&host=/socket/dir]`.
    public init(url text: String) throws {
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql" else {
            throw URLError(description: "cluster URL must look like postgres://USER@HOST/DATABASE, got \(text)")
        }
        guard let user = url.user, !user.isEmpty else { throw URLError(description: "cluster URL names no user: \(text)") }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty else { throw URLError(description: "cluster URL names no database: \(text)") }
        self.user = user
        self.password = url.password
        self.database = database
        self.host = url.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        self.port = url.port ?? 5432
        var channel = "sio_cluster"
        for item in url.queryItems ?? [] {
            switch item.name {
            case "channel":
                guard let name = item.value, Self.isIdentifier(name) else {
                    throw URLError(description: "cluster channel must be letters, digits and _ (at most 40): \(item.value ?? "")")
                }
                channel = name
            case "host":
                unixSocketDirectory = item.value
            default:
                throw URLError(description: "unknown cluster URL parameter \(item.name)")
            }
        }
        self.channel = channel
    }

    /// The channel names a table too, so it is kept to what needs no quoting.
    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 40,
              first == "_" || ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }

    var payloadTable: String { channel + "_payloads" }

    /// Where the Unix socket file is, when the URL gave a directory.
    var unixSocketPath: String? {
        unixSocketDirectory.map { "\($0)/.s.PGSQL.\(port)" }
    }
}
