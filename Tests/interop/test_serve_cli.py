"""`sio serve`: flags, the seed's environment variables, graceful shutdown, descriptor exhaustion."""
import json
import resource
import signal
import socket
import subprocess
import time

import pytest
import requests
import socketio
import websocket

from conftest import BUILD_DIR, wait_until


def handshake(url, path="/socket.io/"):
    response = requests.get(f"{url}{path}", params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert response.status_code == 200, response.text
    return json.loads(response.text[1:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flags_reach_the_handshake(start_server):
    server = start_server("sio", [
        "serve", "--port", "0", "--path", "/rt", "--ping-interval", "1234", "--ping-timeout", "567",
        "--max-payload", "4096"])
    data = handshake(server.url, "/rt/")
    assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (1234, 567, 4096)
    assert requests.get(f"{server.url}/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=5).status_code == 404


def test_namespace_flag(start_server):
    server = start_server("sio", ["serve", "--port", "0", "--namespace", "/chat", "--namespace", "/admin"])
    client = socketio.Client(reconnection=False)
    client.connect(server.url, namespaces=["/chat", "/admin"], wait_timeout=5)
    assert set(client.connection_namespaces) == {"/chat", "/admin"}
    client.disconnect()
    refused = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(server.url, namespaces=["/other"], wait_timeout=3)


def test_environment_variables_and_flag_precedence(start_server):
    port = free_port()
    # The admin endpoint on a free port: the default, port + 1, may be taken by anyone.
    server = start_server("sio", ["serve", "--admin-port", "0"], env={"SOCKETIO_HOST": "127.0.0.1", "SOCKETIO_PORT": str(port)})
    assert server.port == port
    assert handshake(f"http://127.0.0.1:{port}")["sid"]
    server.stop()
    other = free_port()
    server = start_server("sio", ["serve", "--port", str(other), "--admin-port", "0"], env={"SOCKETIO_PORT": str(port)})
    assert server.port == other


def test_invalid_arguments_exit_non_zero():
    for args in (["serve", "--namespace", "nope"], ["serve", "--ping-interval", "0"], ["serve", "--port", "x"]):
        result = subprocess.run([str(BUILD_DIR / "sio"), *args], capture_output=True, text=True, timeout=10)
        assert result.returncode != 0
        assert "Error" in result.stderr
    result = subprocess.run([str(BUILD_DIR / "sio"), "serve"], capture_output=True, text=True, timeout=10,
                            env={"SOCKETIO_PORT": "not-a-port", "PATH": "/usr/bin"})
    assert result.returncode != 0 and "SOCKETIO_PORT" in result.stderr


def test_port_in_use_fails_cleanly(start_server):
    server = start_server("sio", ["serve", "--port", "0"])
    result = subprocess.run([str(BUILD_DIR / "sio"), "serve", "--port", str(server.port)],
                            capture_output=True, text=True, timeout=15)
    assert result.returncode != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_disconnects_everyone_and_exits_zero(start_server, sig):
    server = start_server()
    clients = []
    gone = []
    for transports in (["websocket"], ["polling"]):
        client = socketio.Client(reconnection=False)
        client.on("disconnect", lambda *reason, t=transports[0]: gone.append(t))
        client.connect(server.url, transports=transports, wait_timeout=5)
        clients.append(client)
    started = time.monotonic()
    assert server.stop(sig, timeout=10) == 0
    assert time.monotonic() - started < 5
    assert wait_until(lambda: sorted(gone) == ["polling", "websocket"], timeout=10), gone
    for client in clients:
        client.disconnect()


def test_descriptor_exhaustion_keeps_existing_clients(start_server):
    limit = 128

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    server = start_server(preexec_fn=low_limit)
    client = socketio.Client(reconnection=False)
    client.connect(server.url, transports=["websocket"], wait_timeout=5)
    hogs = []
    for _ in range(limit + 50):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", server.port))
            s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            s.close()
            break
        hogs.append(s)
    time.sleep(0.5)
    # The server is out of descriptors, and the connected client is still served.
    assert client.call("echo", "still served", timeout=5) == "still served"
    assert server.proc.poll() is None
    for s in hogs:
        s.close()
    # Once descriptors are free again, new clients get in.
    def new_client_connects():
        c = socketio.Client(reconnection=False)
        try:
            c.connect(server.url, transports=["websocket"], wait_timeout=2)
            c.disconnect()
            return True
        except socketio.exceptions.ConnectionError:
            return False
    assert wait_until(new_client_connects, timeout=10)
    client.disconnect()
