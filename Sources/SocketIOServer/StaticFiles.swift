import Foundation
import NIOCore
import NIOHTTP1

/// Serves the files of one directory, for the demo pages of `sio serve --static`.
///
/// Small and synchronous on purpose: pages are read rarely and are small; Engine.IO traffic
/// never comes through here.
struct StaticFiles: Sendable {
    struct Response {
        var status: HTTPResponseStatus
        var contentType: String
        var body: ByteBuffer
    }

    let root: String

    func response(for path: String) -> Response {
        let decoded = QueryString.decode(Substring(path))
        let parts = decoded.split(separator: "/")
        guard !parts.contains(where: { $0 == ".." || $0.hasPrefix(".") }) else {
            return Response(status: .notFound, contentType: "text/plain", body: ByteBuffer(string: "Not Found"))
        }
        var file = ([root] + parts.map(String.init)).joined(separator: "/")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
            file += "/index.html"
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            return Response(status: .notFound, contentType: "text/plain", body: ByteBuffer(string: "Not Found"))
        }
        return Response(status: .ok, contentType: Self.contentType(of: file), body: ByteBuffer(bytes: data))
    }

    static func contentType(of file: String) -> String {
        switch file.split(separator: ".").last.map({ $0.lowercased() }) {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "application/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json": return "application/json"
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "ico": return "image/x-icon"
        default: return "application/octet-stream"
        }
    }
}
