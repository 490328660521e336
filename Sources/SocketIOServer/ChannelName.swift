import SocketIOCodec

/// What a client may name a channel: a non-empty string of at most 256 bytes. Anything else is
/// refused before a handler sees it.
public enum ChannelName {
    public static let maximumBytes = 256

    public static func validate(_ value: JSONValue?) -> String? {
        guard let name = value?.stringValue, !name.isEmpty, name.utf8.count <= maximumBytes else { return nil }
        return name
    }
}
