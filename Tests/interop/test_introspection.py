"""What an operator asks a running server: `sio sockets`, `sio channels`, `sio stats` (issue 16),
through the admin endpoint of a real server with real clients."""
import json
import os
import subprocess

import socketio

from conftest import BUILD_DIR, ROOT, wait_until
from plugins import build_c, plugin_dir


def sio(server, *args):
    result = subprocess.run([str(BUILD_DIR / "sio"), *args, "--admin", f"127.0.0.1:{server.admin_port}"],
                            capture_output=True, text=True, timeout=15, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_sockets_channels_and_stats(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--namespace", "/admin"])
    clients = []
    for transport, rooms in (("websocket", ["room", "lobby"]), ("polling", ["room"]), ("websocket", [])):
        c = socketio.Client(reconnection=False)
        c.connect(server.url, transports=[transport], wait_timeout=5)
        for room in rooms:
            assert c.call("__subscribe__", room, timeout=5) is True
        clients.append(c)
    other = socketio.Client(reconnection=False)
    other.connect(server.url, namespaces=["/admin"], transports=["websocket"], wait_timeout=5)

    sockets = json.loads(sio(server, "sockets", "--json"))["sockets"]
    by_id = {s["id"]: s for s in sockets}
    assert len(sockets) == 4
    first, second, third = (by_id[c.get_sid()] for c in clients)
    assert first["transport"] == "websocket" and first["channels"] == ["lobby", "room"]
    assert second["transport"] == "polling" and second["channels"] == ["room"]
    assert third["channels"] == [] and third["remote_address"] == "127.0.0.1"
    assert by_id[other.get_sid("/admin")]["namespace"] == "/admin"
    assert all(s["connected_at"].endswith("Z") for s in sockets)

    in_room = json.loads(sio(server, "sockets", "--channel", "room", "--json"))["sockets"]
    assert sorted(s["id"] for s in in_room) == sorted([clients[0].get_sid(), clients[1].get_sid()])
    text = sio(server, "sockets", "--channel", "room")
    assert clients[0].get_sid() in text and clients[2].get_sid() not in text and "2 socket(s)" in text

    channels = json.loads(sio(server, "channels", "--json"))["channels"]
    assert channels == [{"namespace": "/", "channel": "lobby", "members": 1}, {"namespace": "/", "channel": "room", "members": 2}]
    assert "room" in sio(server, "channels")

    clients[2].disconnect()
    # python-socketio sends DISCONNECT and closes the transport at once: either may be heard first.
    assert wait_until(lambda: sum(json.loads(sio(server, "stats", "--json"))["disconnects"].values()) == 1)
    stats = json.loads(sio(server, "stats", "--json"))
    reason = next(r for r, n in stats["disconnects"].items() if n == 1)
    assert reason in ("transport close", "client namespace disconnect")
    assert stats["sessions"] == 3 and stats["sockets"] == {"/": 2, "/admin": 1}
    summary = sio(server, "stats")
    assert "sessions  3" in summary and f"1  {reason}" in summary and "slow consumer" not in summary
    for c in clients[:2] + [other]:
        c.disconnect()


def test_log_lines_in_json_and_text_carry_milliseconds_and_the_plugin(start_server, tmp_path):
    import re
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so")
    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--plugins", str(directory), "--log-format", "json"])
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert lines, server.log()
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line
        assert line["level"] and line["message"] and line["source"]
    loaded = next(line for line in lines if line["message"] == "plugin loaded")
    assert loaded["plugin"].startswith("relay-c 1.") and "from" in loaded["plugin"]
    assert any(line["message"] == "listening" and line["address"] for line in lines)

    text = start_server("sio", ["serve", "--port", "0", "--no-admin", "--plugins", str(directory)])
    plain = [line for line in text.log().splitlines() if "[SioPluginHost] plugin loaded" in line]
    assert plain and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info sio: ", plain[0]), plain
    assert "plugin=relay-c 1." in plain[0]


def test_admin_disconnect_and_socket_limit_take_broken_input(start_server):
    """POST /disconnect and GET /sockets?limit= from the admin page, fed what a page could send."""
    import urllib.error
    import urllib.request
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0"])
    admin = f"http://127.0.0.1:{server.admin_port}"

    def post(path, body):
        request = urllib.request.Request(admin + path, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    clients = []
    for _ in range(3):
        c = socketio.Client(reconnection=False)
        c.connect(server.url, transports=["websocket"], wait_timeout=5)
        clients.append(c)
    assert post("/disconnect", b"{}")[0] == 400
    assert post("/disconnect", b"not json")[0] == 400
    assert post("/disconnect", b'{"socket_id": 42}')[0] == 400
    status, reply = post("/disconnect", b'{"socket_id": "no-such-socket"}')
    assert status == 404 and "no socket" in reply["error"]
    status, reply = post("/disconnect", json.dumps({"socket_id": clients[0].get_sid(), "namespace": "/nope"}).encode())
    assert status == 404
    victim = clients[0].get_sid()  # read before the disconnect reaches the client, which forgets it
    status, reply = post("/disconnect", json.dumps({"socket_id": victim}).encode())
    assert status == 200 and reply == {"disconnected": victim}
    assert wait_until(lambda: not clients[0].connected)

    def listed(query):
        with urllib.request.urlopen(admin + "/sockets" + query, timeout=5) as reply:
            return json.loads(reply.read())["sockets"]
    assert len(listed("")) == 2
    assert len(listed("?limit=1")) == 1
    assert len(listed("?limit=0")) == 0
    assert len(listed("?limit=-5")) == 0
    assert len(listed("?limit=abc")) == 2
    for c in clients[1:]:
        c.disconnect()
