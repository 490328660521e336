"""The benchmark's load generator (sio-load) against the real server and the C relay plugin: every
scenario completes, and what it counts is what the relay delivered. No timing is asserted."""
import json
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT
from plugins import build_c, plugin_dir


@pytest.fixture
def relay_server(start_server, tmp_path):
    plugins = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", plugins / "relay.so", optimize="-O2")
    return start_server("sio", ["serve", "--port", "0", "--no-admin", "--no-watch", "--plugins", str(plugins)],
                        env={"SOCKETIO_MESSAGE_LOG_FORMAT": "none"})


def load(*args):
    result = subprocess.run([str(BUILD_DIR / "sio-load"), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_fanout_counts_every_delivery(relay_server, transport):
    result = load("fanout", "--port", relay_server.port, "--transport", transport, "--subscribers", 20,
                  "--rate", 50, "--duration", 1)
    assert result["ready"] == 20 and result["failed"] == 0 and result["disconnected"] == 0
    assert result["sent"] > 0
    assert result["received"] == result["expected"] == result["sent"] * 20
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_fanout_at_the_maximum_rate_loses_nothing(relay_server):
    result = load("fanout", "--port", relay_server.port, "--subscribers", 10, "--duration", 1)
    assert result["received"] == result["expected"] > 0


def test_many_channels_deliver_within_their_channel(relay_server):
    result = load("channels", "--port", relay_server.port, "--clients", 40, "--group", 10, "--rate", 5, "--duration", 1)
    assert result["ready"] == 40
    assert result["received"] == result["expected"] == result["sent"] * 9


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_connect_counts_handshakes(relay_server, transport):
    result = load("connect", "--port", relay_server.port, "--transport", transport, "--count", 100, "--concurrency", 10)
    assert result["handshakes"] == 100 and result["failed"] == 0


def test_connect_against_a_closed_port_counts_failures(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = load("connect", "--port", port, "--count", 5, "--concurrency", 5)
    assert result["handshakes"] == 0 and result["failed"] == 5


def test_idle_holds_connections_until_stdin_closes(relay_server):
    process = subprocess.Popen([str(BUILD_DIR / "sio-load"), "idle", "--port", str(relay_server.port), "--connections", "30"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = json.loads(process.stdout.readline())
    assert first["ready"] == 30 and first["failed"] == 0
    process.stdin.close()
    end = json.loads(process.stdout.readline())
    assert end["disconnected"] == 0
    assert process.wait(30) == 0
