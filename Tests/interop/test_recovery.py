"""Connection state recovery (issue 14): the wire format the official client 4.x expects (pid
in the CONNECT answer, an offset after the arguments of every event, pid and offset back in the
CONNECT of a reconnection), what a recovered socket gets (same id, channels, context, every
missed message once and in order), what the plugins see (docs/events.md, "Recovery"), and the
refusals (unknown or foreign pid, unknown offset, outside the window)."""
import json
import time
import urllib.request

import pytest
import websocket

from conftest import wait_until
from plugins import SOURCES, Trace, build_c, plugin_dir
from test_browser_client import browser  # noqa: F401  (fixture)

PAGE = __import__("pathlib").Path(__file__).parent / "browser" / "recovery.html"


class Raw:
    """One Socket.IO client over a raw WebSocket: what goes over the wire, nothing hidden."""

    def __init__(self, server, auth=None):
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=5)
        assert self.ws.recv().startswith("0{")
        self.ws.send("40" + (json.dumps(auth) if auth is not None else ""))
        answer = self.next()
        assert answer.startswith("40{"), answer
        self.connect = json.loads(answer[2:])
        self.acks = 0

    def next(self):
        """The next packet that is not a ping (pings are answered)."""
        while True:
            packet = self.ws.recv()
            if packet == "2":
                self.ws.send("3")
                continue
            return packet

    def event(self):
        packet = self.next()
        assert packet.startswith("42"), packet
        return json.loads(packet[2:])

    def call(self, *args):
        self.acks += 1
        self.ws.send(f"42{self.acks}" + json.dumps(list(args)))
        packet = self.next()
        assert packet.startswith(f"43{self.acks}"), packet
        return json.loads(packet[len(f"43{self.acks}"):])

    def cut(self):
        """The TCP connection goes without a close frame, as a network drop."""
        self.ws.sock.close()


def broadcast(server, message, channel=None):
    body = {"message": message}
    if channel:
        body["channel"] = channel
    request = urllib.request.Request(f"http://127.0.0.1:{server.admin_port}/broadcast", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def stats(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/stats", timeout=5) as reply:
        return json.loads(reply.read())


def cut_after_one(server):
    """A client subscribed to "news" that got one message, then lost its connection: its sid,
    pid and the offset of that message."""
    a = Raw(server)
    assert a.call("__subscribe__", "news") == [True]
    broadcast(server, "one", "news")
    offset = a.event()[2]
    a.cut()
    return a.connect["sid"], a.connect["pid"], offset


@pytest.fixture
def recovering(start_server, tmp_path):
    def start(window=3000, buffer=None):
        directory = plugin_dir(tmp_path, name=f"plugins-{window}")
        build_c(SOURCES / "probe.c", directory / "probe.so")
        trace = Trace(tmp_path / f"trace-{window}.txt")
        args = ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory), "--recovery-window", str(window),
                "--static", str(PAGE.parent)]
        if buffer:
            args += ["--recovery-buffer", str(buffer)]
        server = start_server("sio", args, env={"SIO_TRACE_FILE": str(trace.path)})
        server.trace = trace
        server.plugins = directory
        return server
    return start


def test_the_wire_format_and_a_recovery_with_every_missed_message_in_order(recovering):
    server = recovering()
    a = Raw(server)
    sid, pid = a.connect["sid"], a.connect["pid"]
    assert sid and pid and sid != pid
    assert a.call("__subscribe__", "news") == [True]
    broadcast(server, "one", "news")
    event = a.event()
    assert event[:2] == ["message", "one"] and len(event) == 3 and event[2].startswith("~"), event
    offset = event[2]
    a.cut()
    time.sleep(0.3)
    for text in ("two", "three", "four"):
        broadcast(server, text, "news")
    # The plugin heard nothing of the cut: the socket is recoverable.
    events = [e for (_, e, _) in server.trace.events(socket_id=sid)]
    assert "disconnect" not in events and "finish" not in events, events

    b = Raw(server, auth={"pid": pid, "offset": offset})
    assert b.connect == {"sid": sid, "pid": pid}
    missed = [b.event() for _ in range(3)]
    assert [m[1] for m in missed] == ["two", "three", "four"]
    assert len({m[2] for m in missed}) == 3 and offset not in {m[2] for m in missed}
    # Still in its channel, no subscribe needed; still the same socket for the plugin.
    broadcast(server, "five", "news")
    assert b.event()[1] == "five"
    events = [e for (_, e, _) in server.trace.events(socket_id=sid)]
    assert events.count("connect") == 1 and events.count("subscribe") == 1 and "finish" not in events, events
    b.ws.close()


def test_a_second_cut_recovers_again_and_the_window_ends_the_socket(recovering):
    server = recovering(window=1500)
    sid, pid, offset = cut_after_one(server)
    broadcast(server, "two", "news")
    b = Raw(server, auth={"pid": pid, "offset": offset})
    assert b.connect["sid"] == sid
    two = b.event()
    assert two[1] == "two"
    b.cut()
    broadcast(server, "three", "news")
    c = Raw(server, auth={"pid": pid, "offset": two[2]})
    assert c.connect["sid"] == sid and c.event()[1] == "three"
    c.cut()
    # Nobody comes back: after the window the plugin hears the end, once, with the reason.
    assert wait_until(lambda: ("probe", "finish", "") in [(p, e, "") for (p, e, _) in server.trace.events(socket_id=sid)],
                      timeout=5)
    events = [(e, x) for (_, e, x) in server.trace.events(socket_id=sid)]
    assert [e for e, _ in events].count("disconnect") == 1 and [e for e, _ in events].count("finish") == 1, events
    assert any(e == "disconnect" and "transport close" in x for e, x in events), events
    # Too late now: a new socket.
    d = Raw(server, auth={"pid": pid, "offset": two[2]})
    assert d.connect["sid"] != sid and d.connect["pid"] != pid
    d.ws.close()


@pytest.mark.parametrize("auth", [
    {"pid": "not-a-pid", "offset": "~1"},
    {"pid": None, "offset": "~1"},
    {"pid": 12, "offset": []},
    {"offset": "~1"},
])
def test_a_bad_pid_gets_a_new_socket_and_nothing_of_another(recovering, auth):
    server = recovering()
    victim = Raw(server)
    assert victim.call("__subscribe__", "secret") == [True]
    broadcast(server, "for-victim-only", "secret")
    victim.event()
    victim.cut()
    broadcast(server, "missed-by-victim", "secret")
    stranger = Raw(server, auth=auth)
    assert stranger.connect["sid"] != victim.connect["sid"]
    assert stranger.connect["pid"] != victim.connect["pid"]
    stranger.ws.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        stranger.next()
    stranger.ws.close()


def test_an_unknown_offset_or_a_clean_disconnect_is_not_recovered(recovering):
    server = recovering()
    a = Raw(server)
    sid, pid = a.connect["sid"], a.connect["pid"]
    assert a.call("__subscribe__", "news") == [True]
    broadcast(server, "one", "news")
    a.event()
    a.cut()
    b = Raw(server, auth={"pid": pid, "offset": "~zzzzzz"})
    assert b.connect["sid"] != sid
    # The old socket ended at once: its client moved on.
    assert wait_until(lambda: "finish" in [e for (_, e, _) in server.trace.events(socket_id=sid)])
    # A client that says goodbye is not kept, whatever it sends later.
    assert b.call("__subscribe__", "news") == [True]
    broadcast(server, "two", "news")
    two = b.event()
    b.ws.send("41")
    b.ws.close()
    assert wait_until(lambda: "finish" in [e for (_, e, _) in server.trace.events(socket_id=b.connect["sid"])])
    c = Raw(server, auth={"pid": b.connect["pid"], "offset": two[2]})
    assert c.connect["sid"] != b.connect["sid"] and c.connect["pid"] != b.connect["pid"]
    c.ws.close()


def test_a_small_buffer_that_overflowed_refuses_cleanly(recovering):
    server = recovering(buffer=2048)
    sid, pid, offset = cut_after_one(server)
    for i in range(40):
        broadcast(server, "x" * 200 + str(i), "news")
    b = Raw(server, auth={"pid": pid, "offset": offset})
    assert b.connect["sid"] != sid, "more was missed than the buffer holds: a new socket"
    b.ws.close()


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_the_official_client_recovers_in_chromium(browser, recovering, transports):  # noqa: F811
    server = recovering(window=5000)
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/recovery.html?transports={transports}&delay=800")
        page.wait_for_function("window.state && window.state.subscribed === true", timeout=15_000)
        first = page.evaluate("window.state.connects[0]")
        broadcast(server, {"n": 1}, "news")
        page.wait_for_function("window.state.messages.length === 1")
        page.evaluate("socket.io.engine.close()")
        # While it is away (it comes back after 0.8 s: its session is gone), the channel goes on.
        assert wait_until(lambda: stats(server)["sessions"] == 0, timeout=5)
        assert broadcast(server, {"n": 2}, "news")["delivered"] == 1
        broadcast(server, {"n": 3}, "news")
        assert page.evaluate("window.state.messages.length") == 1
        page.wait_for_function("window.state.connects.length === 2", timeout=15_000)
        page.wait_for_function("window.state.messages.length === 3", timeout=5_000)
        state = page.evaluate("window.state")
        state["transport"] = page.evaluate("socket.io.engine.transport.name")
    finally:
        page.close()
    assert state["connects"][1] == {"id": first["id"], "recovered": True}, state
    assert state["messages"] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert state["arguments"] == [1, 1, 1], "the offset is hidden from seed-style listeners"
    assert state["transport"] == transports
    events = [e for (_, e, _) in server.trace.events(socket_id=first["id"])]
    assert events.count("subscribe") == 1 and "disconnect" not in events and "finish" not in events, events


def test_the_official_client_past_the_window_gets_a_new_socket(browser, recovering):  # noqa: F811
    server = recovering(window=300)
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/recovery.html?delay=800")
        page.wait_for_function("window.state && window.state.subscribed === true", timeout=15_000)
        first = page.evaluate("window.state.connects[0]")
        page.evaluate("socket.io.engine.close()")
        page.wait_for_function("window.state.connects.length === 2", timeout=15_000)
        second = page.evaluate("window.state.connects[1]")
        assert second["recovered"] is False and second["id"] != first["id"]
        # The extension subscribed the new socket again.
        assert wait_until(lambda: "subscribe" in [e for (_, e, _) in server.trace.events(socket_id=second["id"])])
        broadcast(server, "after", "news")
        page.wait_for_function("window.state.messages.indexOf('after') >= 0")
    finally:
        page.close()
    events = [e for (_, e, _) in server.trace.events(socket_id=first["id"])]
    assert events.count("disconnect") == 1 and events.count("finish") == 1, events


def test_a_socket_recoverable_across_a_plugin_reload_recovers(recovering):
    server = recovering()
    sid, pid, offset = cut_after_one(server)
    time.sleep(0.2)
    # A new build of the plugin while the socket is away.
    build_c(SOURCES / "probe.c", server.plugins / "probe.so", optimize="-O2")
    request = urllib.request.Request(f"http://127.0.0.1:{server.admin_port}/reload", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert "reloaded" in reply.read().decode()
    broadcast(server, "two", "news")
    b = Raw(server, auth={"pid": pid, "offset": offset})
    assert b.connect == {"sid": sid, "pid": pid}
    assert b.event()[1] == "two"
    # The new version handles the recovered socket's events, under the same id.
    b.ws.send('42["message","after reload"]')
    assert wait_until(lambda: "message" in [e for (_, e, _) in server.trace.events(socket_id=sid)])
    b.ws.close()


def test_a_socket_away_at_shutdown_ends_once(recovering):
    server = recovering()
    a = Raw(server)
    sid = a.connect["sid"]
    assert a.call("__subscribe__", "news") == [True]
    a.cut()
    assert wait_until(lambda: stats(server)["sessions"] == 0)
    assert server.stop() == 0
    events = [(e, x) for (_, e, x) in server.trace.events(socket_id=sid)]
    assert [e for e, _ in events].count("disconnect") == 1 and [e for e, _ in events].count("finish") == 1, events
    assert any(e == "disconnect" and "server shutting down" in x for e, x in events), events
