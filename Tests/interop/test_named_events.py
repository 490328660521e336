"""ABI 1.2 (issue 15): any event name to many, from a handler (`emit_to`, socket.io's
socket.broadcast.emit and socket.to(room).emit, or io.to(room).emit with the sender) and out of
band (`oob_emit` to a namespace or channel, `oob_emit_to_socket`), with binary attachments,
through a real server, a compiled C plugin and python-socketio clients over both transports."""
import threading

from test_browser_client import browser  # noqa: F401  (fixture)
from test_plugins import client, probe_server, subscribe  # noqa: F401  (fixture)
from conftest import wait_until


def listener(server, channel=None, transport="websocket"):
    got = []
    c = client(server, transports=(transport,))
    c.on("*", lambda event, *args: got.append((event, list(args))))
    if channel:
        assert subscribe(c, channel) is True
    c.got = got
    return c


def test_emit_to_a_channel_a_namespace_and_with_the_sender(probe_server):  # noqa: F811
    sender = listener(probe_server, "room")
    inside = listener(probe_server, "room", transport="polling")
    outside = listener(probe_server)

    # socket.to("room").emit("score", ...): the channel, without the sender.
    assert sender.call("emit_to", ("room", "score", "others", 7), timeout=5) == 0
    assert wait_until(lambda: inside.got == [("score", ["room", "score", "others", 7])])
    # io.to("room").emit(...): the sender too.
    assert sender.call("emit_to", ("room", "score", "self", 8), timeout=5) == 0
    assert wait_until(lambda: ("score", ["room", "score", "self", 8]) in sender.got)
    assert wait_until(lambda: len(inside.got) == 2)
    # socket.broadcast.emit(...): the whole namespace but the sender.
    assert sender.call("emit_to", ("", "news", "others"), timeout=5) == 0
    assert wait_until(lambda: ("news", ["", "news", "others"]) in outside.got and ("news", ["", "news", "others"]) in inside.got)
    assert all(event != "news" for event, _ in sender.got)
    assert all(event != "score" for event, _ in outside.got)

    # Binary arguments travel to every recipient.
    assert sender.call("emit_to", ("room", "blob", "others", b"\x00\x01\xfe\xff"), timeout=5) == 0
    assert wait_until(lambda: ("blob", ["room", "blob", "others", b"\x00\x01\xfe\xff"]) in inside.got)

    # Refused: unknown flag bits, arguments that are not an array, an empty event name, a bad channel.
    SIO_ERR_INVALID = 4
    assert sender.call("emit_to", ("room", "score", "bad"), timeout=5) == SIO_ERR_INVALID
    assert sender.call("emit_to_bad_json", timeout=5) == SIO_ERR_INVALID
    assert sender.call("emit_to", ("room", "", "others"), timeout=5) == SIO_ERR_INVALID
    assert sender.call("emit_to", ("x" * 300, "score", "others"), timeout=5) == SIO_ERR_INVALID
    for c in (sender, inside, outside):
        c.disconnect()


def test_out_of_band_named_events(probe_server):  # noqa: F811
    a = listener(probe_server, "lobby")
    b = listener(probe_server)
    # To a channel (everyone in it: out of band there is no sender), to the namespace, to a socket.
    assert a.call("oob_emit", ("lobby", "tick", 1), timeout=5) == 0
    assert wait_until(lambda: ("tick", ["lobby", "tick", 1]) in a.got)
    assert all(event != "tick" for event, _ in b.got)
    assert a.call("oob_emit", ("", "all", 2), timeout=5) == 0
    assert wait_until(lambda: ("all", ["", "all", 2]) in a.got and ("all", ["", "all", 2]) in b.got)
    assert a.call("oob_emit_to_socket", (b.get_sid(), "direct", b"\x07"), timeout=5) == 0
    assert wait_until(lambda: ("direct", [b.get_sid(), "direct", b"\x07"]) in b.got)
    # Nobody there: SIO_ERR_NO_SOCKET.
    SIO_ERR_NO_SOCKET = 3
    assert a.call("oob_emit", ("empty-room", "tick"), timeout=5) == SIO_ERR_NO_SOCKET
    assert a.call("oob_emit_to_socket", ("no-such-socket", "direct"), timeout=5) == SIO_ERR_NO_SOCKET
    # Broken input: an empty event name, a channel name the host refuses.
    SIO_ERR_INVALID = 4
    assert a.call("oob_emit", ("lobby", ""), timeout=5) == SIO_ERR_INVALID
    assert a.call("oob_emit", ("x" * 300, "tick"), timeout=5) == SIO_ERR_INVALID
    assert a.call("oob_emit_to_socket", (b.get_sid(), ""), timeout=5) == SIO_ERR_INVALID
    a.disconnect()
    b.disconnect()



def test_the_official_client_receives_named_events_to_many(browser, start_server, tmp_path):  # noqa: F811
    """The official JavaScript client (4.8.1, headless Chromium) in a channel: a named event with
    a binary argument, sent to the channel by another client's handler, arrives as socket.io's
    own `socket.on(name)` handlers expect it; and a question the server asks with emit_with_ack
    is answered through the client's acknowledgement callback."""
    from plugins import SOURCES, build_c, plugin_dir
    from test_browser_client import CLIENT

    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    static = tmp_path / "static"
    static.mkdir()
    (static / "named.html").write_text("""<!doctype html><script src="/socket.io/socket.io.js"></script><script>
      window.got = [];
      const socket = io({transports: ["websocket"]});
      socket.on("score", (...args) => window.got.push(args.map(a => a instanceof ArrayBuffer ? Array.from(new Uint8Array(a)) : a)));
      socket.on("connect", () => socket.emit("__subscribe__", "room", (ok) => { window.subscribed = ok; }));
      // The server asks (emit_with_ack): the official client answers through its callback.
      window.messages = [];
      socket.on("message", (m) => window.messages.push(m));
      socket.on("question", (text, answer) => answer("from the browser", text));
    </script>""")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--static", str(static), "--client-script", str(CLIENT)])
    sender = listener(server, "room")
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/named.html")
        page.wait_for_function("window.subscribed === true", timeout=15_000)
        assert sender.call("emit_to", ("room", "score", "others", b"\x01\x02"), timeout=5) == 0
        page.wait_for_function("window.got.length === 1", timeout=15_000)
        assert page.evaluate("window.got") == [["room", "score", "others", [1, 2]]]
        page.evaluate("socket.emit('ask', 'question', '5000')")
        page.wait_for_function("window.messages.length === 1", timeout=15_000)
        assert page.evaluate("window.messages") == [["from the browser", "what is it?"]]
    finally:
        page.close()
        sender.disconnect()


def test_emit_with_ack_answered_timed_out_and_disconnected(probe_server):  # noqa: F811
    """emit_with_ack (ABI 1.2): the callback runs once, with the client's answer, on timeout
    (a late answer dropped), or when the socket disconnects first (between on_disconnect and
    on_finish)."""
    import time

    trace = probe_server.trace
    c = client(probe_server)
    sid = c.get_sid()
    c.on("question", lambda *args: ("forty-two", args[0]))
    assert c.call("ask", ("question", "5000"), timeout=5) == 0
    assert wait_until(lambda: c.received == [["forty-two", "what is it?"]])
    assert [x for _, e, x in trace.events(sid) if e == "ack"] == ['0 ["forty-two","what is it?"]']

    def late(*args):
        time.sleep(0.6)
        return "late"
    c.on("slow", late)
    assert c.call("ask", ("slow", "200"), timeout=5) == 0
    assert wait_until(lambda: c.received[-1:] == ["timeout"])
    time.sleep(0.5)
    assert c.received == [["forty-two", "what is it?"], "timeout"], "the late answer is dropped"
    assert [x for _, e, x in trace.events(sid) if e == "ack"] == ['0 ["forty-two","what is it?"]', "7 "]

    SIO_ERR_INVALID = 4
    assert c.call("ask_bad", timeout=5) == SIO_ERR_INVALID
    assert c.call("ask", ("", "100"), timeout=5) == SIO_ERR_INVALID

    gone = client(probe_server)
    gone_sid = gone.get_sid()

    def leave(*args):
        threading.Thread(target=gone.disconnect).start()
        time.sleep(1)
    gone.on("question", leave)
    gone.emit("ask", ("question", "0"))
    assert wait_until(lambda: ("probe", "finish", "") in [(p, e, "") for p, e, _ in trace.events(gone_sid)])
    events = [e for _, e, _ in trace.events(gone_sid)]
    assert events.count("ack") == 1 and events.index("disconnect") < events.index("ack") < events.index("finish"), events
    assert [x for _, e, x in trace.events(gone_sid) if e == "ack"] == ["3 "]
    c.disconnect()
