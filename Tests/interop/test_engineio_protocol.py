"""Engine.IO v4 and Socket.IO v5 on the wire, spoken by hand over real sockets."""
import json
import socket
import threading
import time

import pytest
import requests
import websocket

from conftest import wait_until

RS = "\x1e"


def eio(server, **params):
    query = {"EIO": "4", "transport": "polling", **params}
    return f"{server.url}/socket.io/", query


def handshake(server):
    url, query = eio(server)
    response = requests.get(url, params=query, timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("0")
    return json.loads(response.text[1:])


def ws_url(server, **params):
    query = "&".join(f"{k}={v}" for k, v in {"EIO": "4", "transport": "websocket", **params}.items())
    return f"ws://127.0.0.1:{server.port}/socket.io/?{query}"


def test_polling_handshake_fields(interop_server):
    open_packet = handshake(interop_server)
    assert len(open_packet["sid"]) == 20
    assert open_packet["upgrades"] == ["websocket"]
    assert open_packet["pingInterval"] == 25000
    assert open_packet["pingTimeout"] == 20000
    assert open_packet["maxPayload"] == 1000000


def test_websocket_handshake_offers_no_upgrade(interop_server):
    ws = websocket.create_connection(ws_url(interop_server), timeout=5)
    message = ws.recv()
    assert message.startswith("0")
    assert json.loads(message[1:])["upgrades"] == []
    ws.close()


@pytest.mark.parametrize(
    "method,params,code,message",
    [
        ("GET", {"EIO": None}, 5, "Unsupported protocol version"),
        ("GET", {"EIO": "3"}, 5, "Unsupported protocol version"),
        ("GET", {"transport": "carrier-pigeon"}, 0, "Transport unknown"),
        ("GET", {"sid": "nope"}, 1, "Session ID unknown"),
        ("POST", {}, 2, "Bad handshake method"),
        ("PUT", {}, 2, "Bad handshake method"),
        ("GET", {"transport": "websocket"}, 3, "Bad request"),
    ],
)
def test_http_errors_are_json(interop_server, method, params, code, message):
    url, query = eio(interop_server)
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    response = requests.request(method, url, params=query, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"code": code, "message": message}


def test_wrong_method_on_a_session(interop_server):
    sid = handshake(interop_server)["sid"]
    url, query = eio(interop_server, sid=sid)
    response = requests.put(url, params=query, timeout=5)
    assert response.status_code == 400
    assert response.json()["code"] == 3


def test_post_and_poll_carry_socketio_packets(interop_server):
    sid = handshake(interop_server)["sid"]
    url, query = eio(interop_server, sid=sid)
    response = requests.post(url, params=query, data="40", timeout=5)
    assert response.status_code == 200 and response.text == "ok"
    packets = requests.get(url, params=query, timeout=5).text.split(RS)
    assert packets[0].startswith('40{"sid":"')
    assert packets[1].startswith('42["welcome",')
    # Two packets in one POST, binary echo as base64 on the way back.
    body = '451-["echo",{"_placeholder":true,"num":0}]' + RS + "bAQID"
    assert requests.post(url, params=query, data=body, timeout=5).text == "ok"
    packets = requests.get(url, params=query, timeout=5).text.split(RS)
    assert packets == ['451-["echo",{"_placeholder":true,"num":0}]', "bAQID"]


def test_second_concurrent_get_closes_the_session(interop_server):
    sid = handshake(interop_server)["sid"]
    url, query = eio(interop_server, sid=sid)
    first = {}

    def long_poll():
        first["response"] = requests.get(url, params=query, timeout=10)

    thread = threading.Thread(target=long_poll)
    thread.start()
    time.sleep(0.3)
    second = requests.get(url, params=query, timeout=5)
    assert second.status_code == 400
    thread.join(10)
    assert first["response"].text.endswith("1"), "the parked GET receives the close packet"
    assert requests.get(url, params=query, timeout=5).json()["code"] == 1


def test_upgrade_from_polling_to_websocket(interop_server):
    sid = handshake(interop_server)["sid"]
    url, query = eio(interop_server, sid=sid)
    requests.post(url, params=query, data="40", timeout=5)
    assert requests.get(url, params=query, timeout=5).text.startswith("40")
    parked = {}
    thread = threading.Thread(target=lambda: parked.update(r=requests.get(url, params=query, timeout=10)))
    thread.start()
    time.sleep(0.2)
    ws = websocket.create_connection(ws_url(interop_server, sid=sid), timeout=5)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    thread.join(5)
    assert parked["r"].text == "6", "the pending poll is released with a noop"
    ws.send("5")
    ws.send('42["echo","after upgrade"]')
    assert ws.recv() == '42["echo","after upgrade"]'
    # Polling is refused once upgraded; a second WebSocket with the sid completes its handshake
    # and is then closed by the server, as the protocol's test suite requires.
    assert requests.get(url, params=query, timeout=5).status_code == 400
    assert requests.post(url, params=query, data="40", timeout=5).status_code == 400
    second = websocket.create_connection(ws_url(interop_server, sid=sid), timeout=5)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        while True:
            frame = second.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                raise websocket.WebSocketConnectionClosedException("closed by the server")
    ws.send('42["echo","still here"]')
    assert ws.recv() == '42["echo","still here"]'
    ws.close()


def test_websocket_for_unknown_sid_is_refused(interop_server):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(interop_server, sid="unknown"), timeout=5)
    assert refused.value.status_code == 400


def test_server_pings_and_closes_on_ping_timeout(start_server):
    server = start_server(env={"SIO_PING_INTERVAL": "300", "SIO_PING_TIMEOUT": "300"})
    ws = websocket.create_connection(ws_url(server), timeout=5)
    ws.recv()
    ws.send("40")
    assert ws.recv().startswith("40")
    ws.recv()  # welcome
    for _ in range(3):
        assert ws.recv() == "2"
        ws.send("3")
    assert ws.recv() == "2"
    started = time.monotonic()
    # No pong: the server closes within the ping timeout.
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        while True:
            if ws.recv() == "":
                raise websocket.WebSocketConnectionClosedException("closed")
    assert time.monotonic() - started < 2


def test_connect_timeout_closes_a_silent_client(start_server):
    server = start_server("sio", ["serve", "--port", "0", "--connect-timeout", "400"])
    ws = websocket.create_connection(ws_url(server), timeout=5)
    ws.recv()
    started = time.monotonic()
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        while True:
            if ws.recv() == "":
                raise websocket.WebSocketConnectionClosedException("closed")
    assert 0.3 < time.monotonic() - started < 3


def test_unknown_namespace(interop_server):
    ws = websocket.create_connection(ws_url(interop_server), timeout=5)
    ws.recv()
    ws.send("40/nope,")
    assert ws.recv() == '44/nope,{"message":"Invalid namespace"}'
    ws.send("40/admin,")
    assert ws.recv().startswith('40/admin,{"sid":"')
    ws.close()


@pytest.mark.parametrize("bad", ["4", "42", "42{}", '42["a"', "4zzz", "9", '43["no ack id"]', "5"])
def test_invalid_packet_closes_websocket(interop_server, bad):
    ws = websocket.create_connection(ws_url(interop_server), timeout=5)
    ws.recv()
    ws.send("40")
    ws.recv()
    ws.recv()
    ws.send(bad)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        while True:
            if ws.recv() == "":
                raise websocket.WebSocketConnectionClosedException("closed")
    # The server is still there for everybody else.
    assert handshake(interop_server)["sid"]


def test_invalid_polling_body_closes_session(interop_server):
    sid = handshake(interop_server)["sid"]
    url, query = eio(interop_server, sid=sid)
    assert requests.post(url, params=query, data="4" + "[", timeout=5).status_code in (200, 400)
    assert requests.post(url, params=query, data="bnot-base64!", timeout=5).status_code == 400
    assert requests.get(url, params=query, timeout=5).status_code == 400


def test_oversize_post_is_refused_with_413(start_server):
    server = start_server(env={"SIO_MAX_PAYLOAD": "1000"})
    sid = handshake(server)["sid"]
    url, query = eio(server, sid=sid)
    response = requests.post(url, params=query, data="4" + "x" * 5000, timeout=5)
    assert response.status_code == 413

    def chunks():  # no Content-Length: the limit holds while the body arrives
        for _ in range(100):
            yield b"4" + b"y" * 999

    response = requests.post(url, params=query, data=chunks(), timeout=5)
    assert response.status_code == 413
    assert requests.post(url, params=query, data="4small", timeout=5).text == "ok"


def test_oversize_websocket_message_closes_with_1009(start_server):
    server = start_server(env={"SIO_MAX_PAYLOAD": "1000"})
    ws = websocket.create_connection(ws_url(server), timeout=5)
    ws.recv()
    ws.send("4" + "x" * 5000)
    frame = ws.recv_frame()
    while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
        frame = ws.recv_frame()
    assert int.from_bytes(frame.data[:2], "big") == 1009
    # Fragments adding up past the limit are refused the same way.
    ws = websocket.create_connection(ws_url(server), timeout=5)
    ws.recv()
    ws.send_frame(websocket.ABNF(fin=0, opcode=websocket.ABNF.OPCODE_TEXT, data="4" + "a" * 800))
    ws.send_frame(websocket.ABNF(fin=1, opcode=websocket.ABNF.OPCODE_CONT, data="b" * 800))
    frame = ws.recv_frame()
    while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
        frame = ws.recv_frame()
    assert int.from_bytes(frame.data[:2], "big") == 1009


def test_cors(start_server):
    server = start_server("sio", ["serve", "--port", "0", "--cors-origin", "http://allowed.example"])
    url, query = eio(server)
    preflight = requests.options(url, params=query, timeout=5, headers={
        "Origin": "http://allowed.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = requests.get(url, params=query, timeout=5, headers={"Origin": "http://allowed.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    other = requests.get(url, params=query, timeout=5, headers={"Origin": "http://other.example"})
    assert "Access-Control-Allow-Origin" not in other.headers

    anyone = start_server("sio", ["serve", "--port", "0", "--cors-origin", "*"])
    url, query = eio(anyone)
    response = requests.get(url, params=query, timeout=5, headers={"Origin": "http://x.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "http://x.example"


def test_no_cors_headers_by_default(interop_server):
    url, query = eio(interop_server)
    response = requests.get(url, params=query, timeout=5, headers={"Origin": "http://x.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_client_close_packet_while_a_get_is_pending(interop_server):
    """Engine.IO "forcefully close the session": the pending GET gets a noop, the POST ok, and
    later requests 400 (the reference server's answers)."""
    sid = handshake(interop_server)["sid"]
    url, query = eio(interop_server, sid=sid)
    parked = {}
    thread = threading.Thread(target=lambda: parked.update(r=requests.get(url, params=query, timeout=10)))
    thread.start()
    time.sleep(0.2)
    posted = requests.post(url, params=query, data="1", timeout=5)
    thread.join(5)
    assert posted.status_code == 200 and posted.text == "ok"
    assert parked["r"].status_code == 200 and parked["r"].text == "6"
    assert requests.get(url, params=query, timeout=5).status_code == 400
