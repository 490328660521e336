"""The network edge (issue 12): what a server facing the internet needs to stay up. Each case
runs a real server process."""
import json
import os
import resource
import socket
import subprocess
import threading
import time

import pytest
import requests
import socketio
import websocket

from conftest import BUILD_DIR, ROOT, wait_until
from load import ack_ids
from plugins import SOURCES, Trace, build_c, plugin_dir


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Out of file descriptors, accepting pauses instead of spinning, and recovers.

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("threads", ["1", "2"])  # one loop accepts through NIO, several through the acceptor thread
def test_descriptor_exhaustion_pauses_accepting_without_spinning(start_server, tmp_path, threads):
    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--no-probe-plugins", "--threads", threads],
                          preexec_fn=few_descriptors)
    held = []
    for _ in range(120):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        held.append(s)
    assert wait_until(lambda: "accepting paused" in server.log(), timeout=5), server.log()[-2000:]
    before = cpu_seconds(server.proc.pid)
    time.sleep(2)
    used = cpu_seconds(server.proc.pid) - before
    assert used < 1.0, f"the server used {used:.2f} s of CPU in 2 s while out of descriptors"
    assert server.log().count("accepting paused") == 1, "logged once per interval"
    for s in held:
        s.close()
    c = socketio.Client(reconnection=False)
    c.connect(server.url, transports=["websocket"], wait_timeout=10)
    assert c.connected
    c.disconnect()


# The operator's command line: every failure one line, starting with "sio:".

def sio(*args, env=None, timeout=15):
    return subprocess.run([str(BUILD_DIR / "sio"), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", [["plugins"], ["reload"], ["broadcast", "x"], ["send", "id", "x"]])
def test_client_commands_without_a_server_fail_in_one_line(command):
    port = free_port()
    result = sio(*command, "--admin", f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"sio: cannot reach the admin endpoint at 127.0.0.1:{port} (is sio serve running?): Connection refused"]


def test_ports_are_validated():
    for flag in ("--port", "--admin-port"):
        result = sio("serve", flag, "70000")
        assert result.returncode != 0 and f"{flag} must be a port number (0-65535), got 70000" in result.stderr
    result = sio("serve", "--port", "65535")
    assert result.returncode != 0 and "--admin-port" in result.stderr


def test_a_taken_admin_port_fails_the_start_before_listening():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        admin_port = taken.getsockname()[1]
        result = sio("serve", "--port", "0", "--admin-port", str(admin_port), "--no-watch")
    assert result.returncode != 0
    assert "listening" not in result.stdout
    assert f"sio: cannot bind the admin endpoint on 127.0.0.1:{admin_port}: Address already in use" in result.stderr
    assert "--admin-port" in result.stderr and "--no-admin" in result.stderr


def test_a_missing_plugins_directory_fails_the_start(tmp_path):
    result = sio("serve", "--port", "0", "--no-admin", "--plugins", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"sio: plugins directory {tmp_path / 'nowhere'} does not exist or is not a directory"]


def test_an_empty_admin_token_is_no_token():
    result = sio("serve", "--port", "0", "--admin-host", "0.0.0.0", "--admin-port", "0", env={"SIO_ADMIN_TOKEN": ""})
    assert result.returncode != 0 and "needs a token" in result.stderr
    result = sio("serve", "--port", "0", "--admin-host", "0.0.0.0", "--admin-port", "0", "--admin-token", "")
    assert result.returncode != 0 and "needs a token" in result.stderr


def test_version_and_help():
    result = sio("--version")
    assert result.returncode == 0 and result.stdout.startswith("sio ") and "plugin ABI 1.4" in result.stdout
    result = sio("serve", "--help")
    assert "SOCKETIO_MESSAGE_LOG_FORMAT" in result.stdout and "SOCKETIO_PORT" in result.stdout


# Connections that never complete a request head, or idle on keep-alive, are closed.

def closed_by_server(s, timeout=5):
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except ConnectionError:
        return True


def test_half_sent_heads_and_idle_keep_alive_connections_are_closed(start_server):
    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--header-timeout", "500"])
    half = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")  # no blank line
        half.append(s)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    idle.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 404")
    began = time.monotonic()
    assert all(closed_by_server(s) for s in half + [silent, idle])
    print(f"\n202 connections closed {time.monotonic() - began:.2f}s after they went quiet (header timeout 0.5 s)")
    # A parked long-poll is not idle: it is answered by the session (its ping), not cut.
    c = socketio.Client(reconnection=False)
    c.connect(server.url, transports=["polling"], wait_timeout=5)
    time.sleep(1.5)
    assert c.connected
    c.disconnect()


# Slow consumers: a client that does not read is dropped past --max-outbound-bytes; the readers
# of the same channel lose nothing.

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_a_client_that_does_not_read_is_dropped_as_a_slow_consumer(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "10-relay.so")
    build_c(SOURCES / "probe.c", directory / "20-probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"SIO_TRACE_FILE": str(trace.path), "SOCKETIO_MESSAGE_LOG_FORMAT": "none"})
    # A WebSocket client with a tiny receive buffer that subscribes and then never reads.
    stuck = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                        timeout=5, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    stuck.recv()
    stuck.send("40")
    stuck_sid = json.loads(stuck.recv()[2:])["sid"]
    stuck.send('421["__subscribe__","room"]')
    assert stuck.recv() == "431[true]"
    # A long-polling client that subscribes and then never polls again.
    base = f"{server.url}/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
    requests.post(f"{base}&sid={sid}", data="40", timeout=5)
    polled = requests.get(f"{base}&sid={sid}", timeout=5).text
    poller_sid = json.loads(polled[polled.index("{"):])["sid"]
    requests.post(f"{base}&sid={sid}", data='42["__subscribe__","room"]', timeout=5)
    # A reader, and a publisher sending 2 MB/s to the channel for 4 s.
    received = []
    reader = socketio.Client(reconnection=False)
    reader.on("message", lambda data: received.append(data["n"]))
    reader.connect(server.url, transports=["websocket"], wait_timeout=5)
    assert reader.call("__subscribe__", "room", timeout=5) is True
    publisher = socketio.Client(reconnection=False)
    publisher.connect(server.url, transports=["websocket"], wait_timeout=5)
    rss_before = rss_kib(server.proc.pid)
    payload = "x" * 20_000
    sent = 0
    began = time.monotonic()
    while time.monotonic() - began < 4:
        publisher.send({"ch": "room", "n": sent, "data": payload})
        sent += 1
        time.sleep(0.01)
    rss_growth = rss_kib(server.proc.pid) - rss_before

    def reason(socket_id):
        return next((x for (_, e, x) in trace.events(socket_id) if e == "disconnect"), None)
    assert wait_until(lambda: reason(stuck_sid) == "slow consumer", timeout=5), trace.events(stuck_sid)
    assert wait_until(lambda: reason(poller_sid) == "slow consumer", timeout=5), trace.events(poller_sid)
    assert wait_until(lambda: len(received) == sent, timeout=10)
    assert received == list(range(sent)), "the reader lost or reordered messages"
    assert server.log().count("slow consumer dropped") == 2
    dropped = [line for line in server.log().splitlines() if "slow consumer dropped" in line]
    assert any(f"socket={stuck_sid}" in line for line in dropped), dropped
    assert any(f"socket={poller_sid}" in line for line in dropped), dropped
    stats = requests.get(f"http://127.0.0.1:{server.admin_port}/stats", timeout=5).json()
    assert stats["disconnects"]["slow consumer"] == 2, stats
    assert stats["sockets"]["/"] == 2 and stats["sessions"] == 2, "the reader and the publisher remain"
    print(f"\n{sent} messages of 20 KB to a channel in 4 s; both non-readers dropped; server RSS grew by {rss_growth} KiB")
    assert rss_growth < 10 * 1024
    for c in (reader, publisher):
        c.disconnect()


# The admin endpoint: no foreign page, no rebound name, no simple cross-origin POST.

def test_the_tokenless_admin_endpoint_refuses_what_a_web_page_could_send(start_server):
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0"])
    c = socketio.Client(reconnection=False)
    received = []
    c.on("message", received.append)
    c.connect(server.url, transports=["websocket"], wait_timeout=5)
    admin = f"http://127.0.0.1:{server.admin_port}"
    body = '{"message":"pwned"}'
    answers = [
        requests.post(f"{admin}/broadcast", data=body, headers={"Content-Type": "text/plain", "Origin": "http://evil.example"}),
        requests.post(f"{admin}/broadcast", data=body, headers={"Content-Type": "text/plain"}),
        requests.post(f"{admin}/broadcast", data=body, headers={"Content-Type": "application/json", "Origin": "http://evil.example"}),
        requests.post(f"{admin}/reload", data="{}", headers={"Content-Type": "application/json", "Host": "evil.example"}),
        requests.get(f"{admin}/plugins", headers={"Host": f"evil.example:{server.admin_port}"}),
    ]
    assert [a.status_code for a in answers] == [403, 415, 403, 403, 403]
    time.sleep(0.3)
    assert received == []
    # The CLI's own requests still work.
    result = sio("broadcast", "hello", "--admin", f"127.0.0.1:{server.admin_port}")
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: received == ["hello"])
    c.disconnect()


def test_websocket_upgrades_from_foreign_origins_are_refused(start_server):
    for args, origin, allowed in [
        ([], None, True),
        ([], "own", True),
        ([], "http://evil.example", False),
        (["--cors-origin", "http://good.example"], "http://good.example", True),
        (["--cors-origin", "http://good.example"], "http://evil.example", False),
        (["--cors-origin", "*"], "http://evil.example", True),
    ]:
        server = start_server("sio", ["serve", "--port", "0", "--no-admin", *args])
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        header = {} if origin is None else {"origin": f"http://127.0.0.1:{server.port}" if origin == "own" else origin}
        if allowed:
            ws = websocket.create_connection(url, timeout=5, suppress_origin=origin is None, **header)
            assert ws.recv().startswith("0{")
            ws.close()
        else:
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(url, timeout=5, **header)
            assert refused.value.status_code == 403
        server.stop()


# Connection limits, total and per client address, refused before any session exists.

def ws_url(server):
    return f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"


def test_connections_per_address_and_in_total_are_limited(start_server):
    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--max-connections-per-ip", "3",
                                  "--max-connections", "5", "--trusted-proxy", "127.0.0.1"])

    def open_from(address):
        ws = websocket.create_connection(ws_url(server), timeout=5, header=[f"X-Forwarded-For: {address}"])
        assert ws.recv().startswith("0{")
        return ws

    def refused_from(address):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(ws_url(server), timeout=5, header=[f"X-Forwarded-For: {address}"])
        return refused.value.status_code

    first = [open_from("10.0.0.1") for _ in range(3)]
    assert refused_from("10.0.0.1") == 429
    second = [open_from("10.0.0.2") for _ in range(2)]
    assert refused_from("10.0.0.3") == 503
    first[0].close()
    reopened = []

    def reopen():
        try:
            reopened.append(open_from("10.0.0.1"))
            return True
        except websocket.WebSocketBadStatusException:
            return False
    assert wait_until(reopen, timeout=5), "the closed connection's slot came back"
    # Long-polling counts its connections too: the limit holds before a session is created.
    assert requests.get(f"{server.url}/socket.io/?EIO=4&transport=polling", headers={"X-Forwarded-For": "10.0.0.9"},
                        timeout=5).status_code == 503
    for ws in first[1:] + second + reopened:
        ws.close()
    assert "--max-connections-per-ip reached" in server.log() and "--max-connections reached" in server.log()


# The inbound event rate limit.

def test_events_past_the_rate_are_dropped_and_a_flooder_is_disconnected(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--max-events-per-second", "20", "--event-burst", "5"],
                          env={"SIO_TRACE_FILE": str(trace.path), "SOCKETIO_MESSAGE_LOG_FORMAT": "none"})
    ws = websocket.create_connection(ws_url(server), timeout=5)
    ws.recv()
    ws.send("40")
    sid = json.loads(ws.recv()[2:])["sid"]
    for n in range(10):
        ws.send(f'42["burst",{n}]')
    assert wait_until(lambda: [x for (_, e, x) in trace.events(sid) if e == "error"] == ["rate limited"])
    time.sleep(0.5)
    assert len([1 for (_, e, x) in trace.events(sid) if e == "message"]) == 5, "the burst went through, the rest was dropped"
    time.sleep(1)
    for n in range(5):  # within the rate again
        ws.send(f'42["calm",{n}]')
        time.sleep(0.06)
    assert wait_until(lambda: len([1 for (_, e, x) in trace.events(sid) if e == "message" and x == "calm"]) == 5)
    # A flood at ten times the rate: dropped, then disconnected.
    began = time.monotonic()
    try:
        while time.monotonic() - began < 8:
            ws.send('42["flood"]')
            time.sleep(0.005)
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        pass
    assert wait_until(lambda: ("probe", "disconnect", "rate limited") in trace.events(sid), timeout=5), trace.events(sid)[-5:]
    assert time.monotonic() - began < 8
    stats = requests.get(f"http://127.0.0.1:{server.admin_port}/stats", timeout=5).json()
    assert stats["disconnects"]["rate limited"] == 1 and stats["disconnects"]["slow consumer"] == 0, stats
    other = socketio.Client(reconnection=False)
    other.connect(server.url, transports=["websocket"], wait_timeout=5)
    assert other.call("send", "fine", timeout=5) == 0
    other.disconnect()


def test_the_client_script_is_found_from_any_directory():
    process = subprocess.Popen([str(BUILD_DIR / "sio"), "serve", "--port", "0", "--no-admin"], cwd="/",
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for line in process.stdout:
            if "sio: listening on" in line:
                port = int(line.rsplit(":", 1)[1])
                break
        assert port
        script = requests.get(f"http://127.0.0.1:{port}/socket.io/socket.io.js", timeout=5)
        assert script.status_code == 200 and "sio channels extension" in script.text
    finally:
        process.kill()
        process.wait()


# The reference server's application (socket.io-protocol's test suite), on sio.

def test_the_protocol_suites_reference_application(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "conformance.c", directory / "conformance.so")
    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--ping-interval", "300", "--ping-timeout", "200",
                                  "--connect-timeout", "1000", "--cors-origin", "*", "--namespace", "/custom",
                                  "--plugins", str(directory)])

    def frames(ws, count):
        got = []
        while len(got) < count:
            frame = ws.recv()
            if frame != "2":
                got.append(frame)
            else:
                ws.send("3")
        return got

    for namespace, payload, auth in [("", "", "{}"), ("", '{"token":"123"}', '{"token":"123"}'),
                                     ("/custom,", "", "{}"), ("/custom,", '{"token":"abc"}', '{"token":"abc"}')]:
        ws = websocket.create_connection(ws_url(server), timeout=5)
        ws.recv()
        ws.send(f"40{namespace}{payload}")
        connect, auth_packet = frames(ws, 2)
        assert connect.startswith(f"40{namespace}") and auth_packet == f'42{namespace}["auth",{auth}]'
        ws.close()
    ws = websocket.create_connection(ws_url(server), timeout=5)
    ws.recv()
    ws.send("40")
    frames(ws, 2)
    ws.send('42["message",1,"2",{"3":[true]}]')
    assert frames(ws, 1) == ['42["message-back",1,"2",{"3":[true]}]']
    ws.send('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert frames(ws, 1) == ['43456[1,"2",{"3":[false]}]']
    ws.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    ws.send_binary(bytes([1, 2, 3]))
    ws.send_binary(bytes([4, 5, 6]))
    assert ws.recv() == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert ws.recv() == bytes([1, 2, 3]) and ws.recv() == bytes([4, 5, 6])
    ws.close()


@pytest.mark.parametrize("mode", ["in-process", "isolated"])
def test_reading_pauses_while_a_clients_writes_are_stuck_and_resumes_without_loss(start_server, tmp_path, mode):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    trace = Trace(tmp_path / "trace.txt")
    isolate = ["--isolate-plugins"] if mode == "isolated" else []
    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--plugins", str(directory),
                                  "--max-outbound-bytes", str(4 << 20), *isolate],
                          env={"SIO_TRACE_FILE": str(trace.path), "SOCKETIO_MESSAGE_LOG_FORMAT": "none"})
    # Reading pauses at half the cap (2 MiB unsent). One event-loop cycle may read up to 1 MiB
    # more before that shows (its answers are flushed at the end of the cycle), so the cap is
    # high enough that this client, which does stop sending, is never dropped for it.
    small = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096), (socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)]
    ws = websocket.create_connection(ws_url(server), timeout=30, sockopt=small)
    ws.recv()
    ws.send("40")
    sid = json.loads(ws.recv()[2:])["sid"]
    events = 8000  # the kernel buffers take about 3 MB of answers before the server's queue fills
    payload = "y" * 2000

    def send_all():
        for n in range(events):
            ws.send(f'42{n}["ack_back","{payload}"]')
    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    # The server reads until the answers it cannot write fill its queue, then stops: the count of
    # handled events settles (isolated, the answers come later, so when it settles varies).
    def handled_now():
        return len([1 for (_, e, x) in trace.events(sid) if e == "message"])
    handled, settle_by = -1, time.monotonic() + 15
    while True:
        time.sleep(1)
        now = handled_now()
        if now == handled:
            break
        handled = now
        assert time.monotonic() < settle_by, "the server kept reading"
    assert sender.is_alive(), "the client could send everything: the server kept reading"
    assert handled < events
    # The client reads again: the server resumes and answers every event, in order.
    acks = ack_ids(ws, events)
    sender.join(10)
    assert acks == list(range(events))
    assert "slow consumer" not in server.log()
    print(f"\nwrites stuck: the server read {handled} of {events} events, then paused; all answered once the client read")
    ws.close()


def test_a_single_loop_server_accepts_on_its_loop(start_server):
    """With --threads 1 the loop accepts itself (no accept thread); everything else is the same."""
    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--threads", "1", "--header-timeout", "500"])
    clients = []
    for transport in ("websocket", "polling"):
        c = socketio.Client(reconnection=False)
        c.connect(server.url, transports=[transport], wait_timeout=5)
        clients.append(c)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    assert closed_by_server(silent)
    assert all(c.connected for c in clients)
    assert server.stop() == 0
