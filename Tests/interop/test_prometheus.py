"""A real Prometheus server (Debian's `prometheus`) scrapes a real sio server's /metrics while
python-socketio clients connect, subscribe and publish; the values Prometheus stores are then
checked against what the clients did (issue 16)."""
import json
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest
import socketio

from conftest import ROOT, free_port, wait_until
from plugins import build_c, plugin_dir

PROMETHEUS = shutil.which("prometheus")
TOKEN = "scrape-token"


@pytest.fixture
def prometheus(tmp_path):
    if PROMETHEUS is None:
        pytest.fail("Debian's prometheus is needed: run scripts/setup")
    processes = []

    def start(admin_port):
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: sio
    scrape_interval: 1s
    authorization:
      credentials: {TOKEN}
    static_configs:
      - targets: ['127.0.0.1:{admin_port}']
""")
        proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes.append(proc)
        base = f"http://127.0.0.1:{port}"

        def ready():
            try:
                return urllib.request.urlopen(base + "/-/ready", timeout=1).status == 200
            except OSError:
                return False
        assert wait_until(ready, timeout=30), "prometheus did not start"
        return base

    yield start
    for proc in processes:
        proc.terminate()
        proc.wait(10)


def query(base, expression):
    """The values of an instant query, by their labels (without __name__, job and instance)."""
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    reply = json.load(urllib.request.urlopen(url, timeout=5))
    assert reply["status"] == "success", reply
    values = {}
    for sample in reply["data"]["result"]:
        labels = {k: v for k, v in sample["metric"].items() if k not in ("__name__", "job", "instance")}
        values[tuple(sorted(labels.items()))] = float(sample["value"][1])
    return values


def value(base, expression):
    values = query(base, expression)
    return sum(values.values()) if values else None


def test_prometheus_scrapes_what_the_clients_did(start_server, prometheus, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so")
    build_c(ROOT / "Tests" / "plugins" / "probe.c", directory / "probe.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--admin-token", TOKEN, "--no-watch"], env={"SIO_TRACE_FILE": str(tmp_path / "trace")})
    base = prometheus(server.admin_port)
    assert wait_until(lambda: value(base, 'up{job="sio"}') == 1, timeout=20), "prometheus cannot scrape sio"

    clients = []
    for index, transport in enumerate(["websocket", "websocket", "websocket", "polling", "polling"]):
        client = socketio.Client(reconnection=False)
        received = []
        client.on("message", received.append)
        client.connect(server.url, transports=[transport], wait_timeout=5)
        channels = ["room", "lobby"] if index < 2 else ["room"]
        for channel in channels:
            assert client.call("__subscribe__", channel, timeout=5) is True
        clients.append((client, received))
    publisher = clients[0][0]
    for n in range(10):
        publisher.emit("message", {"ch": "room", "n": n})
    assert wait_until(lambda: all(len(received) == 10 for _, received in clients[1:]))

    def settled(expression, expected):
        return wait_until(lambda: value(base, expression) == expected, timeout=20)

    assert settled('sio_connections{transport="websocket"}', 3)
    assert settled('sio_connections{transport="polling"}', 2)
    assert settled('sio_handshakes_total{transport="websocket"}', 3)
    assert settled('sio_handshakes_total{transport="polling"}', 2)
    assert settled('sio_sockets{namespace="/"}', 5)
    assert settled('sio_channels{namespace="/"}', 2)
    assert settled('sio_subscriptions{namespace="/"}', 7)
    assert settled('sio_packets_received_total{kind="connect"}', 5)
    assert settled('sio_packets_received_total{kind="subscribe"}', 7)
    assert settled('sio_packets_received_total{kind="message"}', 10)
    # Ten relayed messages, each to the four other members of "room".
    assert settled('sio_messages_sent_total{to="many"}', 10)
    assert settled('sio_deliveries_total - ignoring(to) sio_messages_sent_total{to="one"}', 40)
    # Each subscription was answered with an acknowledgement: a message to one socket.
    assert value(base, 'sio_messages_sent_total{to="one"}') >= 7
    assert settled('sio_handler_duration_seconds_count{plugin="relay-c", event="on_message"}', 10)
    assert value(base, 'sio_handler_errors_total') in (None, 0)
    assert value(base, 'sio_reloads_total{outcome="loaded"}') == 2

    # A handler that fails: counted under its plugin and event, and listed among the recent problems.
    publisher.emit("fail", "on purpose")
    publisher.emit("fail", "on purpose")
    assert settled('sio_handler_errors_total{plugin="probe", event="on_message"}', 2)
    assert settled('sio_handler_duration_seconds_count{plugin="relay-c", event="on_message"}', 12)
    request = urllib.request.Request(f"http://127.0.0.1:{server.admin_port}/errors", headers={"Authorization": f"Bearer {TOKEN}"})
    errors = json.load(urllib.request.urlopen(request, timeout=5))["errors"]
    failed = [e for e in errors if e["message"] == "socket error"]
    assert len(failed) == 2 and failed[0]["metadata"]["plugin"] == "probe 1.0.0", errors
    assert failed[0]["metadata"]["socket"] == publisher.get_sid() and "on purpose" in failed[0]["metadata"]["error"]
    assert value(base, "sio_received_bytes_total") > 10 * len('42["message",{"ch":"room","n":0}]')
    assert value(base, "sio_sent_bytes_total") > 40 * len('42["message",{"ch":"room","n":0}]')

    for client, _ in clients[3:]:
        client.disconnect()
    assert settled('sio_sockets{namespace="/"}', 3)
    assert settled('sio_connections{transport="polling"}', 0)
    assert settled("sio_disconnects_total", 2)
    for client, _ in clients[:3]:
        client.disconnect()
