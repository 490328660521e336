import Foundation
import SocketIOServer

/// The seed's message log: one line per message, subscribe and unsubscribe, formatted with a
/// Python-style `%(KEY)s` format over the request's CGI-style keys plus TIME, TYPE and MESSAGE.
public struct MessageLog: Sendable {
    public static let defaultFormat = #"%(REMOTE_ADDR)s - - [%(TIME)s] "Socket.IO %(TYPE)s: %(MESSAGE)s""#

    private enum Piece: Sendable {
        case literal(String)
        case key(String)
    }

    private let pieces: [Piece]
    private let output: @Sendable (String) -> Void

    /// `none` (any case) turns logging off: the caller gets nil.
    public static func from(environmentValue: String?) -> String? {
        guard let value = environmentValue else { return defaultFormat }
        return value.lowercased() == "none" ? nil : value
    }

    public init(format: String, output: @escaping @Sendable (String) -> Void = MessageLog.standardOutput) {
        self.pieces = Self.parse(format)
        self.output = output
    }

    public static let standardOutput: @Sendable (String) -> Void = { line in
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    private static func parse(_ format: String) -> [Piece] {
        var pieces: [Piece] = []
        var literal = ""
        var rest = Substring(format)
        while let percent = rest.firstIndex(of: "%") {
            literal += rest[..<percent]
            let after = rest[rest.index(after: percent)...]
            if after.hasPrefix("%") {
                literal += "%"
                rest = after.dropFirst()
            } else if after.hasPrefix("("), let close = after.firstIndex(of: ")"),
                after[after.index(after: close)...].hasPrefix("s")
            {
                if !literal.isEmpty { pieces.append(.literal(literal)) }
                literal = ""
                pieces.append(.key(String(after[after.index(after: after.startIndex)..<close])))
                rest = after[after.index(close, offsetBy: 2)...]
            } else {
                literal += "%"
                rest = after
            }
        }
        literal += rest
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        return pieces
    }

    func write(socket: Socket, type: String, message: String) {
        output(format(request: socket.request, type: type, message: message, time: Date()))
    }

    func format(request: HandshakeRequest, type: String, message: String, time: Date) -> String {
        var line = ""
        for piece in pieces {
            switch piece {
            case .literal(let text): line += text
            case .key(let key): line += value(of: key, request: request, type: type, message: message, time: time)
            }
        }
        return line
    }

    private func value(of key: String, request: HandshakeRequest, type: String, message: String, time: Date) -> String {
        switch key {
        case "TIME": return Self.timeFormatter.string(from: time)
        case "TYPE": return type
        case "MESSAGE": return message
        case "REMOTE_ADDR": return request.remoteAddress
        case "REQUEST_METHOD": return request.method
        case "PATH_INFO": return request.path
        case "QUERY_STRING": return request.query
        default:
            if key.hasPrefix("HTTP_") {
                let header = key.dropFirst(5).replacingOccurrences(of: "_", with: "-")
                return request.header(header) ?? "-"
            }
            return "-"
        }
    }

    private static let timeFormatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter
    }()
}
