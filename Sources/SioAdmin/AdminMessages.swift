/// A request to the admin endpoint.
public struct AdminRequest: Sendable {
    public var method: String
    public var path: String
    public var body: [UInt8]
}

public struct AdminResponse: Sendable {
    public var status: Int
    public var body: String
    public var contentType: String

    public init(status: Int, body: String, contentType: String = "application/json") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }
}
