"""Connection state recovery across the nodes of a cluster (issue 14, last point): a client
whose socket is away on one node comes back to another and is recovered there — same id,
channels, every missed message once and in order of each publisher, offsets of the new node —
through the run's own PostgreSQL. Real nodes, raw WebSocket clients (every byte seen), the probe
plugin's trace on each node for what the plugins hear (docs/events.md, "Recovery")."""
import os
import signal
import socket
import threading
import time
import uuid

import pytest
import websocket

from conftest import wait_until
from plugins import SOURCES, Trace, build_c, plugin_dir
from test_browser_client import browser  # noqa: F401  (fixture)
from test_cluster import admin, peers
from test_recovery import PAGE, Raw, broadcast


@pytest.fixture
def nodes(start_server, postgres, tmp_path):
    """start(n, window) -> n nodes with recovery on, each with its own probe trace."""
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    channel = "r_" + uuid.uuid4().hex[:12]

    def start(count=3, window=5000):
        started = []
        for index in range(count):
            trace = Trace(tmp_path / f"trace-{index}.txt")
            node = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                        "--recovery-window", str(window), "--cluster", postgres.url(channel=channel),
                                        "--static", str(PAGE.parent)],
                                env={"SIO_TRACE_FILE": str(trace.path)})
            node.trace = trace
            started.append(node)
        assert wait_until(lambda: all(len(peers(n)) == count - 1 for n in started), timeout=15), \
            [n.log() for n in started]
        return started
    return start


def everywhere(nodes, channel, count):
    return wait_until(lambda: all(admin(n, f"/presence?channel={channel}")[1].get("count") == count for n in nodes),
                      timeout=5)


def settle():
    """A cut socket is away (kept) once its node read the end of the connection and the other
    nodes heard so through presence: a moment."""
    time.sleep(0.3)


def nothing_more(client, wait=0.5):
    client.ws.settimeout(wait)
    try:
        packet = client.next()
    except websocket.WebSocketTimeoutException:
        return
    finally:
        client.ws.settimeout(5)
    raise AssertionError(f"unexpected packet {packet}")


def events_of(node, sid):
    return [(e, x) for (_, e, x) in node.trace.events(socket_id=sid)]


def test_a_client_that_comes_back_to_another_node_is_recovered_there(nodes):
    a, b, c = nodes(3)
    client = Raw(a)
    sid, pid = client.connect["sid"], client.connect["pid"]
    assert client.call("__subscribe__", "news") == [True]
    assert everywhere((a, b, c), "news", 1)
    broadcast(c, "one", "news")
    one = client.event()
    assert one[1] == "one" and one[2].startswith("~")
    client.cut()
    settle()
    # Missed: one message of each node, the away socket's own node included.
    for node, text in ((a, "two"), (b, "three"), (c, "four")):
        broadcast(node, text, "news")
    time.sleep(0.3)
    assert [e for e, _ in events_of(a, sid)] == ["connect", "subscribe"], events_of(a, sid)

    back = Raw(b, auth={"pid": pid, "offset": one[2]})
    assert back.connect == {"sid": sid, "pid": pid}
    missed = [back.event() for _ in range(3)]
    assert [m[1] for m in missed] == ["two", "three", "four"], missed
    assert all(len(m) == 3 and m[2].startswith("~") for m in missed)
    # Still in "news", on the new node: live messages come, from anywhere, with its offsets.
    broadcast(a, "five", "news")
    five = back.event()
    assert five[1] == "five"
    broadcast(b, "six", "news")
    six = back.event()
    assert six[1] == "six"
    nothing_more(back)
    assert everywhere((a, b, c), "news", 1)

    # The old node's plugins heard the end past the window would have brought, once; the new
    # node's hear a new socket (its context stayed behind) that is in "news".
    assert wait_until(lambda: "finish" in [e for e, _ in events_of(a, sid)])
    old = events_of(a, sid)
    assert [e for e, _ in old] == ["connect", "subscribe", "disconnect", "unsubscribe", "finish"], old
    assert "transport close" in old[2][1]
    assert [e for e, _ in events_of(b, sid)] == ["connect", "subscribe"], events_of(b, sid)

    # Cut again: recovered on the new node by its own offset, and back on the first node too.
    back.cut()
    settle()
    broadcast(c, "seven", "news")
    again = Raw(a, auth={"pid": pid, "offset": six[2]})
    assert again.connect == {"sid": sid, "pid": pid}
    assert again.event()[1] == "seven"
    nothing_more(again)
    again.ws.close()


def test_every_message_once_and_in_order_while_the_client_moves(nodes):
    """A steady stream from all three nodes while the client is cut from one and recovered on
    another, four times over: nothing lost or doubled in between, the claims' round trips
    included."""
    a, b, c = nodes(3)
    client = Raw(a)
    sid, pid = client.connect["sid"], client.connect["pid"]
    assert client.call("__subscribe__", "stream") == [True]
    assert everywhere((a, b, c), "stream", 1)
    stop = threading.Event()
    sent = []

    def publish():
        i = 0
        while not stop.is_set():
            broadcast((c, a, b)[i % 3], str(i), "stream")
            sent.append(i)
            i += 1
            time.sleep(0.002)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        got = []
        back = client
        for target in (b, c, a, b):
            for _ in range(40):
                got.append(back.event())
            back.cut()
            settle()
            back = Raw(target, auth={"pid": pid, "offset": got[-1][2]})
            assert back.connect == {"sid": sid, "pid": pid}
        for _ in range(40):
            got.append(back.event())
    finally:
        stop.set()
        publisher.join()
    back.ws.settimeout(3)
    try:
        while True:
            got.append(back.event())
    except websocket.WebSocketTimeoutException:
        pass
    numbers = [int(m[1]) for m in got]
    # One publisher per node: each keeps its order; together, every message exactly once.
    for origin in range(3):
        mine = [n for n in numbers if n % 3 == origin]
        assert mine == sorted(mine), (origin, mine)
    assert sorted(numbers) == sent, (len(numbers), len(sent), sorted(set(sent) - set(numbers))[:10],
                                    [n for n in set(numbers) if numbers.count(n) > 1][:10])


def test_what_cannot_be_recovered_elsewhere_gets_a_new_socket(nodes):
    a, b = nodes(2, window=1500)
    # An offset the old node never sent: the old socket ends, the client gets a new one.
    client = Raw(a)
    sid, pid = client.connect["sid"], client.connect["pid"]
    assert client.call("__subscribe__", "news") == [True]
    broadcast(a, "one", "news")
    client.event()
    client.cut()
    settle()
    fresh = Raw(b, auth={"pid": pid, "offset": "~zzzzzz"})
    assert fresh.connect["sid"] != sid and fresh.connect["pid"] != pid
    assert wait_until(lambda: "finish" in [e for e, _ in events_of(a, sid)])
    assert [e for e, _ in events_of(b, sid)] == []
    fresh.ws.close()

    # Past the window: gone everywhere, a new socket.
    client = Raw(a)
    sid, pid = client.connect["sid"], client.connect["pid"]
    assert client.call("__subscribe__", "news") == [True]
    broadcast(a, "one", "news")
    offset = client.event()[2]
    client.cut()
    assert wait_until(lambda: "finish" in [e for e, _ in events_of(a, sid)], timeout=5)
    late = Raw(b, auth={"pid": pid, "offset": offset})
    assert late.connect["sid"] != sid
    late.ws.close()

    # A pid nobody has, and one of a socket that is connected (not away): new sockets, nothing of it.
    live = Raw(a)
    assert live.call("__subscribe__", "news") == [True]
    assert everywhere((a, b), "news", 1)
    for auth in ({"pid": "nobody", "offset": offset}, {"pid": live.connect["pid"], "offset": offset}):
        other = Raw(b, auth=auth)
        assert other.connect["sid"] not in (sid, live.connect["sid"])
        other.ws.close()
    broadcast(b, "still", "news")
    assert live.event()[1] == "still"
    live.ws.close()


def test_a_client_whose_node_died_gets_a_new_socket_after_the_claim_times_out(nodes):
    a, b = nodes(2)
    client = Raw(a)
    sid, pid = client.connect["sid"], client.connect["pid"]
    assert client.call("__subscribe__", "news") == [True]
    assert everywhere((a, b), "news", 1)
    broadcast(b, "one", "news")
    offset = client.event()[2]
    client.cut()
    settle()
    os.kill(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    started = time.monotonic()
    fresh = Raw(b, auth={"pid": pid, "offset": offset})
    waited = time.monotonic() - started
    assert fresh.connect["sid"] != sid, fresh.connect
    assert waited < 4.5, waited
    # The new socket is a plain new one: no channel, and the node serves on.
    broadcast(b, "two", "news")
    nothing_more(fresh)
    fresh.ws.close()


class Switch:
    """A TCP proxy in front of the nodes, as a load balancer that sends a client elsewhere when
    its connection drops: `to(node)` cuts every connection and sends new ones to `node`."""

    def __init__(self, node):
        self.backend = node.port
        self.connections = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.backend))
                except OSError:
                    client.close()
                    continue
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def to(self, node):
        with self.lock:
            self.backend = node.port
            connections, self.connections = self.connections, []
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def close(self):
        self.listener.close()
        self.to(type("Node", (), {"port": self.backend}))


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_the_official_client_is_recovered_by_another_node_in_chromium(browser, nodes, transports):  # noqa: F811
    a, b = nodes(2)
    switch = Switch(a)
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{switch.port}/recovery.html?transports={transports}&delay=800")
        page.wait_for_function("window.state && window.state.subscribed === true", timeout=15_000)
        first = page.evaluate("window.state.connects[0]")
        assert everywhere((a, b), "news", 1)
        broadcast(b, {"n": 1}, "news")
        page.wait_for_function("window.state.messages.length === 1")
        # The network drops: the client's next connection lands on the other node.
        switch.to(b)
        time.sleep(0.3)
        broadcast(a, {"n": 2}, "news")
        broadcast(b, {"n": 3}, "news")
        page.wait_for_function("window.state.connects.length === 2", timeout=15_000)
        page.wait_for_function("window.state.messages.length === 3", timeout=5_000)
        broadcast(a, {"n": 4}, "news")
        page.wait_for_function("window.state.messages.length === 4", timeout=5_000)
        time.sleep(0.3)
        state = page.evaluate("window.state")
    finally:
        page.close()
        switch.close()
    assert state["connects"][1] == {"id": first["id"], "recovered": True}, state
    assert state["messages"] == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    assert state["arguments"] == [1, 1, 1, 1], "the offset is hidden from seed-style listeners"
    # No second subscribe from the extension; the new node's plugin heard a socket in "news".
    assert [e for (_, e, _) in b.trace.events(socket_id=first["id"])] == ["connect", "subscribe"]
    assert wait_until(lambda: "finish" in [e for (_, e, _) in a.trace.events(socket_id=first["id"])])
