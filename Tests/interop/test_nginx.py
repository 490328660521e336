"""The interop scenarios through a real nginx, configured with deploy/nginx/sio.conf, in front of
two server processes (ip_hash keeps each client on one), on every transport."""
import os
import shutil
import socket
import subprocess
import time

import pytest
import socketio

from conftest import ROOT, free_port, wait_until
from plugins import SOURCES, build_c, plugin_dir
from test_python_client import EXPECTED_TRANSPORT, TRANSPORTS, transport  # noqa: F401

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def start_nginx(tmp_path):
    processes = []

    def start(backends):
        port = free_port()
        site = (ROOT / "deploy" / "nginx" / "sio.conf").read_text()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        servers = "".join(f"    server 127.0.0.1:{b};\n" for b in backends)
        site = site.replace("    server 127.0.0.1:8000;\n", servers)
        work = tmp_path / "nginx"
        work.mkdir(exist_ok=True)
        temp = "".join(f"    {kind}_temp_path {work}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (work / "nginx.conf").write_text(
            f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {work}/nginx.pid;\n"
            f"error_log {work}/error.log warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log off;\n{temp}{site}\n}}\n")
        process = subprocess.Popen([NGINX, "-c", str(work / "nginx.conf"), "-p", str(work)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        processes.append(process)

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        assert wait_until(listening, timeout=10), process.stderr.read() if process.poll() is not None else "nginx did not listen"
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


@pytest.fixture
def proxied(start_server, start_nginx):
    backends = [start_server(), start_server()]
    return start_nginx([b.port for b in backends]), backends


def test_interop_through_nginx(proxied, transport):  # noqa: F811
    url, _ = proxied
    client = socketio.Client(reconnection=False)
    events = {}
    client.on("welcome", lambda data: events.setdefault("welcome", data))
    client.on("many", lambda n: events.setdefault("many", []).append(n))
    client.on("question", lambda *args: ["via nginx", *args])
    client.on("answer", lambda *args: events.setdefault("answer", args))
    client.connect(url, transports=TRANSPORTS[transport], auth={"through": "nginx"}, wait_timeout=5)
    assert wait_until(lambda: "welcome" in events)
    assert events["welcome"]["auth"] == {"through": "nginx"}
    assert client.call("echo", {"a": [1, 2]}, timeout=5) == {"a": [1, 2]}
    assert client.call("echo", b"\x00\xffbinary", timeout=5) == b"\x00\xffbinary"
    client.emit("emit-many", 40)
    assert wait_until(lambda: events.get("many") == list(range(40)))
    client.emit("ask", 7)
    assert wait_until(lambda: events.get("answer") == (["via nginx", 7],))
    if transport == "upgrade":
        wait_until(lambda: client.transport() == "websocket")
    assert client.transport() == EXPECTED_TRANSPORT[transport]
    gone = []
    client.on("disconnect", lambda *a: gone.append(True))
    client.emit("disconnect-me")
    assert wait_until(lambda: gone)


def test_many_polling_clients_stick_to_their_process(proxied):
    url, _ = proxied
    clients = []
    for _ in range(6):
        c = socketio.Client(reconnection=False)
        c.connect(url, transports=["polling"], wait_timeout=5)
        clients.append(c)
    for i, c in enumerate(clients):
        assert c.call("echo", i, timeout=5) == i
    for c in clients:
        c.disconnect()


def test_client_address_behind_a_trusted_proxy(start_server, start_nginx, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    trusting = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                    "--trusted-proxy", "127.0.0.1"])
    url = start_nginx([trusting.port])
    for transports in (["polling"], ["websocket"]):
        c = socketio.Client(reconnection=False)
        c.connect(url, transports=transports, headers={"X-Forwarded-For": "203.0.113.9"}, wait_timeout=5)
        # nginx appends the peer it saw (127.0.0.1, trusted) to what the client sent.
        assert c.call("request", timeout=5)["remote"] == "203.0.113.9"
        c.disconnect()
    untrusting = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    url = start_nginx([untrusting.port])
    c = socketio.Client(reconnection=False)
    c.connect(url, transports=["websocket"], headers={"X-Forwarded-For": "203.0.113.9"}, wait_timeout=5)
    assert c.call("request", timeout=5)["remote"] == "127.0.0.1"
    c.disconnect()
