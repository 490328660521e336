"""Interop with the real python-socketio client: sync and asyncio, on every transport."""
import asyncio
import threading
import time

import pytest
import socketio

from conftest import wait_until

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}
EXPECTED_TRANSPORT = {"polling": "polling", "websocket": "websocket", "upgrade": "websocket"}


@pytest.fixture(params=list(TRANSPORTS))
def transport(request):
    return request.param


def connect(server, transport, namespaces=None, auth=None, **handlers):
    client = socketio.Client(reconnection=False)
    events = {}
    lock = threading.Lock()

    def recorder(name):
        def record(*args):
            with lock:
                events.setdefault(name, []).append(args)
        return record

    for name in ("welcome", "echo", "many", "broadcast", "answer"):
        client.on(name, recorder(name), namespace="*" if False else "/")
        if namespaces:
            for ns in namespaces:
                if ns != "/":
                    client.on(name, recorder(ns + ":" + name), namespace=ns)
    for name, handler in handlers.items():
        client.on(name, handler)
    client.connect(server.url, transports=TRANSPORTS[transport], namespaces=namespaces, auth=auth, wait_timeout=5)
    return client, events


def test_connect_with_auth_and_transport(interop_server, transport):
    client, events = connect(interop_server, transport, auth={"token": "secret"})
    assert wait_until(lambda: "welcome" in events)
    welcome = events["welcome"][0][0]
    assert welcome["auth"] == {"token": "secret"}
    assert welcome["sid"] == client.get_sid()
    assert welcome["namespace"] == "/"
    if transport == "upgrade":
        wait_until(lambda: client.transport() == "websocket")
    assert client.transport() == EXPECTED_TRANSPORT[transport]
    client.disconnect()


def test_emit_without_and_with_ack(interop_server, transport):
    client, events = connect(interop_server, transport)
    client.emit("echo", {"n": 1, "text": "héllo"})
    assert wait_until(lambda: events.get("echo") == [({"n": 1, "text": "héllo"},)])
    assert client.call("echo", ["a", 2, None], timeout=5) == ["a", 2, None]
    # Several arguments come back as a tuple.
    assert client.call("echo", data=("x", {"y": True}), timeout=5) == ("x", {"y": True})
    client.disconnect()


def test_binary_both_ways(interop_server, transport):
    client, events = connect(interop_server, transport)
    payload = bytes(range(256)) * 4
    assert client.call("echo", payload, timeout=5) == payload
    mixed = {"name": "file", "data": b"\x00\xffbinary", "parts": [b"a", b"b"]}
    assert client.call("echo", mixed, timeout=5) == mixed
    assert wait_until(lambda: len(events.get("echo", [])) == 2)
    assert events["echo"][0] == (payload,)
    client.disconnect()


def test_server_emits_with_ack_to_client(interop_server, transport):
    client, events = connect(interop_server, transport, question=lambda *args: ["answered", *args])
    client.emit("ask", {"q": 42})
    assert wait_until(lambda: "answer" in events)
    assert events["answer"][0] == (["answered", {"q": 42}],)
    client.disconnect()


def test_server_initiated_emits_arrive_in_order(interop_server, transport):
    client, events = connect(interop_server, transport)
    client.emit("emit-many", 200)
    assert wait_until(lambda: len(events.get("many", [])) == 200)
    assert [args[0] for args in events["many"]] == list(range(200))
    client.disconnect()


def test_namespaces(interop_server, transport):
    client, events = connect(interop_server, transport, namespaces=["/", "/admin"])
    assert wait_until(lambda: "/admin:welcome" in events and "welcome" in events)
    assert events["/admin:welcome"][0][0]["namespace"] == "/admin"
    assert client.call("echo", "to admin", namespace="/admin", timeout=5) == "to admin"
    assert client.call("echo", "to root", timeout=5) == "to root"
    client.disconnect()


def test_unknown_namespace_is_refused(interop_server, transport):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(interop_server.url, transports=TRANSPORTS[transport], namespaces=["/nope"], wait_timeout=3)


def test_refused_connection_gets_the_message(interop_server, transport):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(interop_server.url, transports=TRANSPORTS[transport], auth={"refuse": "go away"}, wait_timeout=3)
    assert errors and errors[0]["message"] == "go away"
    assert errors[0]["data"] == {"reason": "asked"}


def test_disconnect_from_server(interop_server, transport):
    gone = threading.Event()
    client, _ = connect(interop_server, transport, disconnect=lambda *reason: gone.set())
    client.emit("disconnect-me")
    assert gone.wait(5)
    client.disconnect()


def test_disconnect_from_client_is_seen_by_server(interop_server, transport):
    watcher, _ = connect(interop_server, "websocket")
    client, _ = connect(interop_server, transport)
    assert watcher.call("broadcast", "x", timeout=5) == 2
    client.disconnect()
    assert wait_until(lambda: watcher.call("broadcast", "y", timeout=5) == 1)
    watcher.disconnect()


def test_broadcast_reaches_every_client(interop_server, transport):
    clients = [connect(interop_server, transport) for _ in range(3)]
    assert clients[0][0].call("broadcast", {"hello": "all"}, timeout=5) == 3
    for _, events in clients:
        assert wait_until(lambda: events.get("broadcast") == [({"hello": "all"},)])
    for client, _ in clients:
        client.disconnect()


def test_async_client(interop_server, transport):
    async def scenario():
        client = socketio.AsyncClient(reconnection=False)
        answers = asyncio.Queue()
        client.on("question", lambda *args: ["async", *args])
        client.on("answer", lambda *args: answers.put_nowait(args))
        await client.connect(interop_server.url, transports=TRANSPORTS[transport], auth={"a": 1}, wait_timeout=5)
        assert await client.call("echo", {"async": True}, timeout=5) == {"async": True}
        assert await client.call("echo", b"\x01\x02", timeout=5) == b"\x01\x02"
        await client.emit("ask", "q")
        assert await asyncio.wait_for(answers.get(), 5) == (["async", "q"],)
        await client.disconnect()

    asyncio.run(scenario())
