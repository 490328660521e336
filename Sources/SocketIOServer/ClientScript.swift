import Foundation
import NIOCore

/// `/socket.io/socket.io.js`: the official client (read from disk, never shipped with the
/// source) followed by the channels extension, so one `<script>` tag gives a page `io()`,
/// `socket.subscribe(channel)`, `socket.unsubscribe(channel)` and the seed's `new io.Socket()`.
public struct ClientScript: Sendable {
    /// What a page gets when the official file is missing: an error that says what to run.
    static let missingMessage = "the official Socket.IO client is missing: run scripts/fetch-client (it extracts socket.io.min.js 4.8.1 from the PyPI wheel nicegui)"

    let body: ByteBuffer?

    /// Reads the official client from `path`; nil content when the file is not there.
    public init(officialClientPath path: String?) {
        if let path, let data = FileManager.default.contents(atPath: path) {
            var buffer = ByteBuffer(bytes: data)
            buffer.writeString("\n")
            buffer.writeString(Self.channelsExtension)
            body = buffer
        } else {
            body = nil
        }
    }

    public var isAvailable: Bool { body != nil }

    /// Adds channels to the official client's `Socket`, and `io.Socket` as the seed's
    /// constructor (a socket that connects when told to).
    static let channelsExtension = #"""
/* sio channels extension: socket.subscribe / socket.unsubscribe and the seed's io.Socket. */
(function (io) {
  if (!io || !io.Socket || io.Socket.__sioChannels) { return; }
  var proto = io.Socket.prototype;

  function channelsOf(socket) {
    if (!socket.__sioChannels) {
      socket.__sioChannels = new Set();
      // After a reconnect the server has forgotten the subscriptions: make them again, unless
      // it recovered the socket (connection state recovery), channels and all.
      var connectedBefore = socket.connected;
      socket.on("connect", function () {
        if (connectedBefore && !socket.recovered) {
          socket.__sioChannels.forEach(function (channel) { socket.emit("__subscribe__", channel); });
        }
        connectedBefore = true;
      });
    }
    return socket.__sioChannels;
  }

  function request(socket, event, channel, callback, onSuccess) {
    socket.emit(event, channel, function (ok, reason) {
      if (ok === true) { onSuccess(); }
      if (typeof callback === "function") { callback(ok === true ? null : new Error(reason || "refused"), ok === true); }
    });
    return socket;
  }

  /* Subscribes to `channel`; callback(error, ok) when the server answered. */
  proto.subscribe = function (channel, callback) {
    var channels = channelsOf(this);
    return request(this, "__subscribe__", channel, callback, function () { channels.add(channel); });
  };

  proto.unsubscribe = function (channel, callback) {
    var channels = channelsOf(this);
    channels.delete(channel);
    return request(this, "__unsubscribe__", channel, callback, function () {});
  };

  /* Connection state recovery: the server puts an offset ("~" and base 36) after the arguments
     of every event. Seed-style "message" listeners get the message alone. */
  var onpacket = proto.onpacket;
  proto.onpacket = function (packet) {
    if (packet && packet.type === 0 && packet.nsp === this.nsp && packet.data && packet.data.pid) { this.__sioRecovery = true; }
    return onpacket.apply(this, arguments);
  };
  function withoutOffset(socket, listener) {
    var wrappers = socket.__sioWrappers || (socket.__sioWrappers = new WeakMap());
    if (!wrappers.has(listener)) {
      wrappers.set(listener, function () {
        var args = Array.prototype.slice.call(arguments);
        var last = args[args.length - 1];
        if (socket.__sioRecovery && args.length > 0 && typeof last === "string" && /^~[0-9a-z]+$/.test(last)) { args.pop(); }
        return listener.apply(this, args);
      });
    }
    return wrappers.get(listener);
  }
  ["on", "once", "off", "removeListener"].forEach(function (name) {
    var original = proto[name];
    if (typeof original !== "function") { return; }
    proto[name] = function (event, listener) {
      if (event === "message" && typeof listener === "function") {
        return original.call(this, event, withoutOffset(this, listener));
      }
      return original.apply(this, arguments);
    };
  });

  /* new io.Socket([url], [options]) -> a socket that waits for socket.connect(). */
  function CompatSocket(url, options) {
    if (url && typeof url === "object") { options = url; url = undefined; }
    var settings = Object.assign({}, options || {}, { autoConnect: false });
    return url ? io(url, settings) : io(settings);
  }
  CompatSocket.prototype = proto;
  CompatSocket.__sioChannels = true;
  io.Socket = CompatSocket;
})(typeof io !== "undefined" ? io : undefined);
"""#
}
