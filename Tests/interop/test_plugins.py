"""Handler plugins in a real server: the seven events, channel binding, every sending call,
context, ordering, refusals, error isolation, the message log and refused plugin files."""
import os
import re
import subprocess
import threading
import time

import pytest
import socketio

from conftest import BUILD_DIR, wait_until
from plugins import SOURCES, Trace, build_c, plugin_dir, swift_plugin


@pytest.fixture
def probe_server(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "50-probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"SIO_TRACE_FILE": str(trace.path)})
    server.trace = trace
    server.directory = directory
    return server


def client(server, auth=None, transports=("websocket",), **handlers):
    c = socketio.Client(reconnection=False)
    c.received = []
    c.on("message", lambda data: c.received.append(data))
    for name, handler in handlers.items():
        c.on(name, handler)
    c.connect(server.url, transports=list(transports), auth=auth, wait_timeout=5)
    return c


def subscribe(c, channel):
    return c.call("__subscribe__", channel, timeout=5)


def test_lifecycle_order_and_context(probe_server):
    c = client(probe_server, auth={"name": "ada"})
    sid = c.get_sid()
    assert subscribe(c, "room-1") is True
    assert subscribe(c, "lobby") is True
    c.emit("hello", {"x": 1})
    assert wait_until(lambda: ("probe", "message", "hello") in probe_server.trace.events(sid))
    c.disconnect()
    assert wait_until(lambda: ("probe", "finish", "ada") in probe_server.trace.events(sid))
    events = [(e, x) for (_, e, x) in probe_server.trace.events(sid) if not e.startswith("room-")]
    # python-socketio closes the transport right after its DISCONNECT packet, so either reason
    # may arrive first; what matters is the order around it.
    assert events[4][1] in ("client namespace disconnect", "transport close")
    events[4] = ("disconnect", "*")
    assert events == [
        ("connect", '{"name":"ada"}'),
        ("subscribe", "room-1"), ("subscribe", "lobby"),
        ("message", "hello"),
        ("disconnect", "*"),
        ("unsubscribe", "lobby"), ("unsubscribe", "room-1"),
        ("finish", "ada"),
    ]


def test_channel_binding_by_start_anchored_pattern(probe_server):
    c = client(probe_server)
    sid = c.get_sid()
    c.emit("before")  # not subscribed: bound handlers do not run
    assert subscribe(c, "room-42") is True
    assert subscribe(c, "my-room-7") is True  # "room-" matches at the start only
    c.emit("inside")
    assert subscribe(c, "dashboard") is True
    c.emit("both")
    assert wait_until(lambda: ("probe", "message", "both") in probe_server.trace.events(sid))
    c.disconnect()
    assert wait_until(lambda: any(e == "finish" for (_, e, _) in probe_server.trace.events(sid)))
    bound = [(e, x) for (_, e, x) in probe_server.trace.events(sid) if e.startswith(("room-", "dashboard-"))]
    assert bound == [
        ("room-subscribe", "room-42"),
        ("room-message", "inside"),
        ("room-message", "both"), ("dashboard-message", "both"),
        ("room-disconnect", bound[4][1]),
        ("room-unsubscribe", "room-42"),
        ("room-finish", ""),
    ], "on_finish bound to room- still runs: the unsubscribes come first but the socket was in room-42"


def test_subscribe_acks_refusal_and_limits(probe_server):
    c = client(probe_server)
    assert subscribe(c, "forbidden") == [False, "no entry"] or subscribe(c, "forbidden") == (False, "no entry")
    assert c.call("__subscribe__", "", timeout=5) == (False, "invalid channel name")
    assert c.call("__subscribe__", "x" * 257, timeout=5) == (False, "invalid channel name")
    assert c.call("__unsubscribe__", "never-joined", timeout=5) == (False, "not subscribed")
    assert subscribe(c, "a") is True
    assert c.call("__unsubscribe__", "a", timeout=5) is True
    # The forbidden channel was left again: a broadcast there reaches nobody.
    assert c.call("oob_broadcast_channel", ("x", "forbidden"), timeout=5) == 3
    c.disconnect()


def test_channel_cap_per_socket(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--max-channels", "3"])
    c = client(server)
    assert [subscribe(c, f"c{i}") for i in range(3)] == [True, True, True]
    assert c.call("__subscribe__", "c3", timeout=5) == (False, "too many channels")
    c.disconnect()


def test_refused_connection(probe_server):
    c = socketio.Client(reconnection=False)
    errors = []
    c.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect(probe_server.url, transports=["websocket"], auth={"refuse": "banned"}, wait_timeout=3)
    assert errors[0]["message"] == "banned"


def test_every_sending_call(probe_server):
    a = client(probe_server)
    b = client(probe_server)
    outsider = client(probe_server)
    for c in (a, b):
        assert subscribe(c, "room-1") is True
    assert subscribe(outsider, "other") is True

    assert a.call("send", "to a", timeout=5) == 0
    assert wait_until(lambda: a.received == ["to a"])

    assert a.call("broadcast", "to others", timeout=5) == 0
    assert wait_until(lambda: b.received == ["to others"] and outsider.received == ["to others"])
    assert a.received == ["to a"]

    assert a.call("broadcast_channel", ("to room", "room-1"), timeout=5) == 0
    assert wait_until(lambda: b.received[-1] == "to room")
    assert a.call("broadcast_channel", ("to my channels"), timeout=5) == 0
    assert wait_until(lambda: b.received[-1] == "to my channels")

    assert a.call("send_and_broadcast", "everyone", timeout=5) == 0
    assert wait_until(lambda: all(c.received[-1] == "everyone" for c in (a, b, outsider)))

    assert a.call("send_and_broadcast_channel", ("room and me", "room-1"), timeout=5) == 0
    assert wait_until(lambda: a.received[-1] == "room and me" and b.received[-1] == "room and me")
    time.sleep(0.2)
    assert outsider.received == ["to others", "everyone"]
    assert a.received.count("to room") == 0 and a.received.count("to others") == 0

    for c in (a, b, outsider):
        c.disconnect()


def test_emit_ack_and_binary_in_on_message(probe_server):
    got = []
    c = client(probe_server, emitted=lambda *args: got.append(args))
    c.emit("emit_back", ("text", {"n": 1}, b"\x00\x01\x02"))
    assert wait_until(lambda: got == [("text", {"n": 1}, b"\x00\x01\x02")])
    assert c.call("ack_back", ("x", b"bin"), timeout=5) == ("x", b"bin")
    c.disconnect()


def test_out_of_band_calls_and_no_socket(probe_server):
    a = client(probe_server)
    b = client(probe_server)
    assert a.call("oob_broadcast", "all", timeout=5) == 0
    assert wait_until(lambda: a.received == ["all"] and b.received == ["all"])
    NO_SOCKET = 3
    assert a.call("oob_broadcast_channel", ("x", "empty"), timeout=5) == NO_SOCKET
    assert subscribe(b, "room-9") is True
    assert a.call("oob_broadcast_channel", ("room news", "room-9"), timeout=5) == 0
    assert wait_until(lambda: b.received[-1] == "room news")
    assert a.call("oob_send", (b.get_sid(), "direct"), timeout=5) == 0
    assert wait_until(lambda: b.received[-1] == "direct")
    assert a.call("oob_send", ("no-such-socket", "x"), timeout=5) == NO_SOCKET
    a.disconnect()
    b.disconnect()


def test_out_of_band_from_the_cli(probe_server):
    admin = f"127.0.0.1:{probe_server.admin_port}"
    sio = str(BUILD_DIR / "sio")

    def run(*args):
        return subprocess.run([sio, *args, "--admin", admin], capture_output=True, text=True, timeout=10)

    result = run("broadcast", "nobody")
    assert result.returncode != 0 and "no socket" in result.stderr
    c = client(probe_server)
    assert run("broadcast", "hello").returncode == 0
    assert wait_until(lambda: c.received == ["hello"])
    result = run("broadcast", "--channel", "room-1", "x")
    assert result.returncode != 0 and result.stderr.strip() == "sio: no socket on channel room-1"
    assert subscribe(c, "room-1") is True
    assert run("broadcast", "--channel", "room-1", '{"json": true}').returncode == 0
    assert wait_until(lambda: c.received[-1] == {"json": True})
    assert run("send", c.get_sid(), "--text", "42").returncode == 0
    assert wait_until(lambda: c.received[-1] == "42")
    result = run("send", "unknown-id", "x")
    assert result.returncode != 0 and "no socket with id unknown-id" in result.stderr
    listing = run("plugins")
    assert listing.returncode == 0
    assert "probe 1.0.0  ABI 1.4" in listing.stdout and "on_message  channel ^room-" in listing.stdout
    c.disconnect()


def test_server_side_subscribe_and_disconnect(probe_server):
    c = client(probe_server)
    sid = c.get_sid()
    assert c.call("server_subscribe", "room-5", timeout=5) == 0
    assert c.call("oob_broadcast_channel", ("joined by the server", "room-5"), timeout=5) == 0
    assert wait_until(lambda: c.received == ["joined by the server"])
    assert c.call("server_unsubscribe", "room-5", timeout=5) == 0
    assert c.call("server_unsubscribe", "room-5", timeout=5) == 6  # not found
    gone = threading.Event()
    c.on("disconnect", lambda *args: gone.set())
    c.emit("disconnect_me")
    assert gone.wait(5)
    assert wait_until(lambda: ("probe", "disconnect", "server namespace disconnect") in probe_server.trace.events(sid))


def test_handler_error_raises_on_error_and_connection_stays(probe_server):
    c = client(probe_server)
    sid = c.get_sid()
    c.emit("fail", "broken handler")
    assert c.call("send", "still alive", timeout=5) == 0
    assert wait_until(lambda: ("probe", "error", "probe: broken handler") in probe_server.trace.events(sid))
    # An on_error handler that fails is not raised again.
    c.emit("fail", "fail-error please")
    assert c.call("send", "alive", timeout=5) == 0
    time.sleep(0.3)
    errors = [x for (_, e, x) in probe_server.trace.events(sid) if e == "error"]
    assert errors == ["probe: broken handler", "probe: fail-error please"]
    assert c.call("bad_json", timeout=5) == 4  # SIO_ERR_INVALID, not a crash
    c.disconnect()


def test_invalid_packet_raises_on_error_before_close(probe_server):
    import websocket
    ws = websocket.create_connection(f"ws://127.0.0.1:{probe_server.port}/socket.io/?EIO=4&transport=websocket", timeout=5)
    ws.recv()
    ws.send("40")
    sid = ws.recv()[len('40{"sid":"'):-2]
    ws.send('42["unterminated"')
    assert wait_until(lambda: any(e == "finish" for (_, e, _) in probe_server.trace.events(sid)))
    events = [e for (_, e, _) in probe_server.trace.events(sid)]
    assert events == ["connect", "error", "disconnect", "finish"]
    assert "invalid packet" in probe_server.trace.events(sid)[1][2]


def test_request_view(probe_server):
    c = socketio.Client(reconnection=False)
    c.connect(probe_server.url + "?room=7&x=y", transports=["polling"], headers={"X-Test": "hdr"}, wait_timeout=5)
    request = c.call("request", timeout=5)
    assert request["method"] == "GET"
    assert request["path"] == "/socket.io/"
    assert "room=7" in request["query"] and "EIO=4" in request["query"]
    assert request["remote"] == "127.0.0.1"
    assert request["x_test"] == "hdr"
    c.disconnect()


def test_context_is_per_socket(probe_server):
    a = client(probe_server, auth={"name": "a"})
    b = client(probe_server, auth={"name": "b"})
    assert a.call("ctx_get", "name", timeout=5) == "a"
    assert b.call("ctx_get", "name", timeout=5) == "b"
    assert a.call("ctx_set", ("k", "v"), timeout=5) == 0
    assert a.call("ctx_get", "k", timeout=5) == "v"
    assert b.call("ctx_get", "k", timeout=5) is None
    a.disconnect()
    b.disconnect()


def test_plugins_run_in_file_name_order(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "20-second.so")
    build_c(SOURCES / "probe.c", directory / "10-first.so")
    trace = Trace(tmp_path / "trace.txt")
    # Both copies read SIO_PROBE_NAME at init; the log says which loaded first.
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"SIO_TRACE_FILE": str(trace.path)})
    log = server.log()
    assert log.index("10-first.so") < log.index("20-second.so")
    c = client(server)
    c.emit("hello")
    assert wait_until(lambda: len([1 for (_, e, _) in trace.events(c.get_sid()) if e == "message"]) == 2)
    c.disconnect()


@pytest.mark.parametrize("defines,reason", [
    (["BROKEN_ABI"], "built for ABI major 2, this server speaks ABI major 1"),
    (["BROKEN_INIT"], "init failed"),
    (["BROKEN_PATTERN"], "does not compile"),
    (["BROKEN_CONNECT"], "on_connect cannot be bound to a channel"),
    (["BROKEN_NO_ENTRY"], "no symbol sio_plugin_entry"),
    (["BROKEN_NULL_INFO"], "sio_plugin_entry returned NULL"),
    (["BROKEN_NULL_NAME"], "invalid plugin description: name is NULL"),
])
def test_refused_plugin_files(start_server, tmp_path, defines, reason):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "broken.c", directory / "10-broken.so", defines, werror=False)
    build_c(SOURCES / "probe.c", directory / "20-probe.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    refused = [line for line in server.log().splitlines() if "plugin refused" in line]
    assert len(refused) == 1 and "10-broken.so" in refused[0] and reason in refused[0], server.log()
    c = client(server)  # the other plugin serves
    assert c.call("send", "ok", timeout=5) == 0
    c.disconnect()


def test_not_a_shared_library(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    (directory / "notes.so").write_text("not an ELF file")
    os.chmod(directory / "notes.so", 0o644)
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    assert "plugin refused" in server.log() and "not a loadable shared library" in server.log()


def test_unsafe_permissions_are_refused(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    os.chmod(directory / "probe.so", 0o777)
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    assert "writable by group or others" in server.log()
    shared = plugin_dir(tmp_path, "shared")
    build_c(SOURCES / "probe.c", shared / "probe.so")
    os.chmod(shared, 0o777)
    # At start-up an unsafe plugins directory is an error, not a server with no handlers.
    result = subprocess.run([str(BUILD_DIR / "sio"), "serve", "--port", "0", "--admin-port", "0", "--plugins", str(shared)],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert result.stderr.startswith("sio: unsafe permissions: plugins directory") and "writable by group or others" in result.stderr
    os.chmod(shared, 0o755)
    os.chown(shared / "probe.so", 12345, 12345)
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(shared)])
    assert "owned by uid 12345" in server.log()


def test_message_log_format(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"SOCKETIO_MESSAGE_LOG_FORMAT": "LOG %(TYPE)s|%(MESSAGE)s|%(REMOTE_ADDR)s|%(HTTP_X_TEST)s|%(PATH_INFO)s|%%"})
    c = socketio.Client(reconnection=False)
    c.connect(server.url, transports=["websocket"], headers={"X-Test": "t1"}, wait_timeout=5)
    c.send({"a": 1})
    c.emit("custom", [1, 2])
    subscribe(c, "room-1")
    c.call("__unsubscribe__", "room-1", timeout=5)
    c.disconnect()
    expected = [
        'LOG message|{"a":1}|127.0.0.1|t1|/socket.io/|%',
        'LOG message|["custom",[1,2]]|127.0.0.1|t1|/socket.io/|%',
        "LOG subscribe|room-1|127.0.0.1|t1|/socket.io/|%",
        "LOG unsubscribe|room-1|127.0.0.1|t1|/socket.io/|%",
    ]
    assert wait_until(lambda: [l.strip() for l in server.output if l.startswith("LOG ")] == expected), server.log()


def test_default_message_log_and_none(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    c = client(server)
    c.send("hi")
    assert wait_until(lambda: any('"Socket.IO message: "hi""' in l for l in server.output))
    line = next(l for l in server.output if "Socket.IO message" in l)
    assert line.startswith("127.0.0.1 - - [")
    c.disconnect()
    quiet = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                         env={"SOCKETIO_MESSAGE_LOG_FORMAT": "none"})
    c = client(quiet)
    c.send("hi")
    assert c.call("send", "x", timeout=5) == 0
    assert not any("Socket.IO message" in l for l in quiet.output)
    c.disconnect()


def test_out_of_band_from_a_plugin_thread_while_clients_churn(probe_server):
    controller = client(probe_server)
    listeners = [client(probe_server) for _ in range(3)]
    for c in listeners:
        assert subscribe(c, "ticks") is True
    assert controller.call("start_thread", "ticks", timeout=5) == 0
    for round_ in range(20):
        c = client(probe_server, transports=("websocket",) if round_ % 2 else ("polling",))
        subscribe(c, "ticks")
        c.disconnect()
    time.sleep(0.2)
    sent, nobody = controller.call("stop_thread", timeout=5)
    assert sent > 50
    counts = [len(c.received) for c in listeners]
    assert all(count > 50 for count in counts), counts
    # No lost subscriber: after the churn every listener is still subscribed and served.
    assert controller.call("oob_broadcast_channel", ("last", "ticks"), timeout=5) == 0
    assert wait_until(lambda: all(c.received[-1] == "last" for c in listeners))
    assert probe_server.proc.poll() is None
    for c in listeners + [controller]:
        c.disconnect()


def test_swift_plugin(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    swift_plugin("SwiftProbePlugin", directory / "swift-probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"SIO_TRACE_FILE": str(trace.path)})
    c = client(server, auth={"name": "grace"})
    sid = c.get_sid()
    c.emit("hello")
    assert wait_until(lambda: c.received == ["hello grace from swift"])
    assert c.call("whoami", timeout=5) == ("grace", "/socket.io/")
    assert c.call("__subscribe__", "vip-lounge", timeout=5) == (False, "members only")
    c.emit("throw", "oops")
    assert wait_until(lambda: ("swift", "error", "swift-probe: thrown: oops") in trace.events(sid))
    c.emit("oob")
    assert wait_until(lambda: c.received[-2:] == ["out of band from a thread", "no socket on empty-channel"])
    # Routing by event name, Codable payloads both ways, and the SDK's own log levels.
    assert c.call("swap", {"x": 1, "y": 2}, timeout=5) == ({"x": 2, "y": 1}, "swapped")
    c.emit("swap", "not a point")
    assert wait_until(lambda: any(e[:2] == ("swift", "error") and "swift-probe:" in e[2] and "swap" not in e[2]
                                  for e in trace.events(sid)))
    points = []
    c.on("points", lambda *args: points.append(args))
    c.emit("points")
    assert wait_until(lambda: points == [([{"x": 1, "y": 2}, {"x": 3, "y": 4}], {"plain": True})])
    assert wait_until(lambda: re.search(r"warning .*plugin=swift-probe 2\.0\.0.* points sent to " + re.escape(sid), server.log()))
    # Named events to many and out of band (ABI 1.2) from the SDK.
    other = client(server)
    got, other_got = [], []
    c.on("*", lambda event, *args: got.append((event, list(args))))
    other.on("*", lambda event, *args: other_got.append((event, list(args))))
    assert subscribe(c, "room") is True and subscribe(other, "room") is True
    assert c.call("to-room", timeout=5) == "nobody in empty-room"
    assert wait_until(lambda: ("room-news", [{"x": 1, "y": 1}, f"from {sid}"]) in other_got)
    assert wait_until(lambda: ("everyone", ["hi"]) in got and ("everyone", ["hi"]) in other_got)
    assert wait_until(lambda: ("direct", ["just you"]) in got)
    assert all(event != "room-news" for event, _ in got) and all(event != "direct" for event, _ in other_got)
    other.disconnect()
    # emitWithAck from the SDK: answered, then timed out (the late answer dropped).
    answers = iter(["fine", None])

    def question(*args):
        value = next(answers)
        if value is None:
            time.sleep(0.6)
            return "too late"
        return value
    c.on("question", question)
    c.emit("ask-swift")
    assert wait_until(lambda: {"answered": "fine"} in c.received)
    c.emit("ask-swift")
    assert wait_until(lambda: "swift timeout" in c.received)
    time.sleep(0.5)
    assert {"answered": "too late"} not in c.received
    refused = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(server.url, transports=["websocket"], auth={"refuse": "swift says no"}, wait_timeout=3)
    c.disconnect()
    assert wait_until(lambda: ("swift", "finish", "grace") in trace.events(sid))


def test_echo_examples(start_server, tmp_path):
    from conftest import ROOT
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "echo-c" / "echo.c", directory / "echo-c.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    c = client(server)
    c.send({"echo": 1})
    assert wait_until(lambda: c.received == [{"echo": 1}])
    assert c.call("anything", [1, 2], timeout=5) == [1, 2]
    c.disconnect()
    swift_dir = plugin_dir(tmp_path, "swift")
    swift_plugin("EchoSwiftPlugin", swift_dir / "echo-swift.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(swift_dir)])
    c = client(server)
    c.send({"echo": 2})
    assert wait_until(lambda: c.received == [{"echo": 2}])
    assert c.call("anything", [3], timeout=5) == [3]
    c.disconnect()
