"""Connection state recovery across the nodes of a cluster (issue 14, last point): a client
whose socket is away on one node comes back to another and is recovered there — same id,
channels, every missed message once and in order of each publisher, offsets of the new node —
through the run's own PostgreSQL. Real nodes, raw WebSocket clients (every byte seen), the probe
plugin's trace on each node for what the plugins hear (docs/events.md, "Recovery")."""
import os
import signal
import threading
import time
import uuid

import pytest
import websocket

from conftest import wait_until
from plugins import SOURCES, Trace, build_c, plugin_dir
from test_cluster import admin, peers
from test_recovery import Raw, broadcast


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
                                        "--recovery-window", str(window), "--cluster", postgres.url(channel=channel)],
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


def away_on(node, sid):
    """The socket is away on `node` (cut, kept) as the other nodes see it: give presence a moment."""
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
    away_on(a, sid)
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
    away_on(b, sid)
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
            away_on(None, sid)
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
    away_on(a, sid)
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
    away_on(a, sid)
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
