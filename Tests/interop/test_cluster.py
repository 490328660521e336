"""Several sio processes as one server over PostgreSQL (issue 13): real nodes, the run's own
PostgreSQL (conftest `postgres`), python-socketio clients on different nodes, the cluster probe
plugin (Tests/plugins/cluster_probe.c) calling the sending and presence API."""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
import socketio

from conftest import BUILD_DIR, ROOT, wait_until
from plugins import build_c, plugin_dir
from test_browser_client import browser  # noqa: F401  (fixture)


def admin(node, path, body=None):
    url = f"http://127.0.0.1:{node.admin_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def peers(node):
    status, stats = admin(node, "/stats")
    return stats["cluster"]["peers"] if status == 200 and stats.get("cluster") else []


@pytest.fixture
def cluster(start_server, postgres, tmp_path):
    """start(n) -> n nodes of a cluster of their own (a NOTIFY channel per test), each knowing
    the others."""
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Tests" / "plugins" / "cluster_probe.c", directory / "probe.so")
    channel = "t_" + uuid.uuid4().hex[:12]

    def start(count=3, extra=()):
        nodes = [start_node() for _ in range(count)]
        assert wait_until(lambda: all(len(peers(n)) == count - 1 for n in nodes), timeout=15), \
            [n.log() for n in nodes]
        return nodes

    def start_node(extra=()):
        return start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                    "--cluster", postgres.url(channel=channel), *extra])

    start.node = start_node
    start.channel = channel
    return start


class Client:
    """A python-socketio client that records what it receives, in order."""

    def __init__(self, node, transport="websocket"):
        self.messages = []
        self.binary = []
        self.disconnected = False
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("message", lambda data: self.messages.append(data))
        self.sio.on("bin", lambda data: self.binary.append(data))
        self.sio.on("disconnect", lambda *reason: setattr(self, "disconnected", True))
        self.sio.connect(node.url, transports=[transport], wait_timeout=5)
        self.id = self.sio.get_sid()

    def call(self, event, *args):
        """The ack's arguments, as a list (python-socketio unwraps a single one)."""
        result = self.sio.call(event, tuple(args), timeout=10)
        return list(result) if isinstance(result, tuple) else [result]

    def subscribe(self, channel):
        assert self.sio.call("__subscribe__", channel, timeout=10) is True

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()


def spread(nodes, count, channel=None):
    """`count` clients round-robin over the nodes, each subscribed to `channel`."""
    clients = []
    for i in range(count):
        client = Client(nodes[i % len(nodes)])
        if channel:
            client.subscribe(channel)
        clients.append(client)
    return clients


def presence_count(node, channel):
    status, reply = admin(node, f"/presence?channel={channel}")
    return reply["count"] if status == 200 else -1


def test_channel_broadcast_reaches_every_node_once_without_the_sender(cluster):
    nodes = cluster(3)
    clients = spread(nodes, 6, channel="room")
    outsider = Client(nodes[1])
    assert wait_until(lambda: all(presence_count(n, "room") == 6 for n in nodes), timeout=5)
    sender = clients[0]
    assert sender.call("room", "room", "hello") == [0]
    assert wait_until(lambda: all(c.messages == ["hello"] for c in clients[1:]), timeout=5), \
        [c.messages for c in clients]
    time.sleep(0.3)
    assert sender.messages == [] and outsider.messages == []
    assert all(c.messages == ["hello"] for c in clients[1:])
    # socket.broadcast: the whole namespace but the sender, on every node.
    assert clients[1].call("all", "everyone") == [0]
    assert wait_until(lambda: outsider.messages == ["everyone"] and all(
        c.messages[-1:] == ["everyone"] for c in clients if c is not clients[1]), timeout=5)
    time.sleep(0.3)
    assert clients[1].messages == ["hello"] and outsider.messages == ["everyone"]
    for c in clients + [outsider]:
        c.close()


def test_one_publisher_keeps_its_order_across_nodes(cluster):
    nodes = cluster(2)
    sender, receiver = Client(nodes[0]), Client(nodes[1])
    receiver.subscribe("ordered")
    assert wait_until(lambda: presence_count(nodes[0], "ordered") == 1)
    for i in range(500):
        sender.sio.emit("room", ("ordered", str(i)))
    assert wait_until(lambda: len(receiver.messages) >= 500, timeout=15), len(receiver.messages)
    time.sleep(0.3)
    assert receiver.messages == [str(i) for i in range(500)]
    # The same message many times at once: PostgreSQL folds equal notifications of one
    # transaction into one, and several notifications go per round trip; none may be lost.
    for _ in range(300):
        sender.sio.emit("room", ("ordered", "same"))
    assert wait_until(lambda: len(receiver.messages) >= 800, timeout=15), len(receiver.messages)
    time.sleep(0.3)
    assert receiver.messages[500:] == ["same"] * 300
    sender.close()
    receiver.close()


def test_send_by_id_and_the_cli_of_a_third_node(cluster):
    nodes = cluster(3)
    a, b = Client(nodes[0]), Client(nodes[1])
    b.subscribe("news")
    assert wait_until(lambda: presence_count(nodes[2], "news") == 1)
    # A plugin's out-of-band send by socket id reaches a socket of another node...
    assert a.call("to", b.id, "direct") == [0]
    assert wait_until(lambda: b.messages == ["direct"])
    # ...and an id no node has is the "no socket" error.
    assert a.call("to", "no-such-socket", "x") == [3]  # SIO_ERR_NO_SOCKET

    def sio(node, *args):
        return subprocess.run([str(BUILD_DIR / "sio"), *args, "--admin", f"127.0.0.1:{node.admin_port}"],
                              capture_output=True, text=True, timeout=15)

    # The CLI of a node that has neither socket.
    assert sio(nodes[2], "send", b.id, "--text", "from-c").returncode == 0
    assert sio(nodes[2], "broadcast", "--channel", "news", '"to-news"').returncode == 0
    assert wait_until(lambda: b.messages == ["direct", "from-c", "to-news"]), b.messages
    missing = sio(nodes[2], "broadcast", "--channel", "nobody-here", '"x"')
    assert missing.returncode != 0 and "no socket on channel nobody-here" in missing.stderr
    assert a.messages == []
    channels = sio(nodes[2], "channels", "--json")
    assert {"namespace": "/", "channel": "news", "members": 1} in json.loads(channels.stdout)["channels"]
    a.close()
    b.close()


def test_presence_values_counts_and_the_presence_command(cluster):
    nodes = cluster(3)
    clients = spread(nodes, 3, channel="lobby")
    for client, name in zip(clients, ["ann", "bob", "cid"]):
        assert client.call("set", name) == [0]
    expected = {(c.id, n) for c, n in zip(clients, ["ann", "bob", "cid"])}

    def listed(client):
        text, count = client.call("who", "lobby")
        return {(m["id"], m["value"]) for m in json.loads(text)}, count

    assert wait_until(lambda: all(listed(c) == (expected, 3) for c in clients), timeout=5), [listed(c) for c in clients]
    assert clients[0].call("count", "lobby") == [0, 3]
    assert clients[0].call("count", "") == [0, 3]
    # Too long, or cleared.
    assert clients[0].call("set", "x" * 257) == [4]  # SIO_ERR_INVALID
    assert clients[1].call("set", "") == [0]
    assert wait_until(lambda: (clients[1].id, None) in listed(clients[2])[0])
    out = subprocess.run([str(BUILD_DIR / "sio"), "presence", "lobby", "--admin", f"127.0.0.1:{nodes[0].admin_port}"],
                         capture_output=True, text=True, timeout=15)
    assert out.returncode == 0 and "3 socket(s) in lobby" in out.stdout and "cid" in out.stdout, out.stdout
    # Leaving the channel and disconnecting leave presence everywhere.
    assert clients[2].sio.call("__unsubscribe__", "lobby", timeout=5) is True
    clients[0].close()
    assert wait_until(lambda: all(presence_count(n, "lobby") == 1 for n in nodes), timeout=5)
    for c in clients:
        c.close()


def test_join_leave_and_disconnect_a_socket_of_another_node_by_id(cluster):
    nodes = cluster(2)
    a, b = Client(nodes[0]), Client(nodes[1])
    # socketsJoin from a plugin on node A, for a socket of node B.
    assert a.call("join", b.id, "vip") == [0]
    assert wait_until(lambda: presence_count(nodes[0], "vip") == 1)
    assert a.call("room", "vip", "for-vips") == [0]
    assert wait_until(lambda: b.messages == ["for-vips"])
    # socketsLeave through the admin endpoint of node A.
    assert admin(nodes[0], "/leave", {"socket_id": b.id, "channel": "vip"})[0] == 200
    assert wait_until(lambda: presence_count(nodes[0], "vip") == 0)
    assert admin(nodes[0], "/join", {"socket_id": "nobody", "channel": "vip"})[0] == 404
    assert admin(nodes[0], "/join", {"socket_id": b.id, "channel": ""})[0] == 400
    assert a.call("join", "nobody", "vip") == [3]
    # disconnectSockets: from node A, the socket on node B goes.
    assert a.call("kick", b.id) == [0]
    assert wait_until(lambda: b.disconnected, timeout=5)
    assert wait_until(lambda: not any(m["id"] == b.id for m in admin(nodes[0], "/presence?channel=x")[1]["members"]))
    a.close()


def test_large_and_binary_payloads_go_through_the_table(cluster, postgres):
    nodes = cluster(2)
    a, b = Client(nodes[0]), Client(nodes[1])
    b.subscribe("big")
    assert wait_until(lambda: presence_count(nodes[0], "big") == 1)
    large = "x" * 20000 + "é" * 3000
    assert a.call("room", "big", "small-1") == [0]
    assert a.call("room", "big", large) == [0]
    assert a.call("room", "big", "small-2") == [0]
    assert a.call("bin", "big", "70000") == [0]
    assert wait_until(lambda: len(b.messages) == 3 and len(b.binary) == 1, timeout=10), (b.messages, len(b.binary))
    assert b.messages == ["small-1", large, "small-2"]
    assert b.binary[0] == bytes(i % 251 for i in range(70000))
    rows = postgres.psql(f"SELECT count(*) FROM {cluster.channel}_payloads")
    assert int(rows) >= 2
    a.close()
    b.close()


def test_a_killed_node_leaves_presence_and_the_others_keep_serving(cluster):
    nodes = cluster(3)
    clients = spread(nodes, 6, channel="room")
    assert wait_until(lambda: presence_count(nodes[0], "room") == 6)
    killed_at = time.monotonic()
    nodes[2].proc.send_signal(signal.SIGKILL)
    nodes[2].proc.wait()
    assert wait_until(lambda: presence_count(nodes[0], "room") == 4 and presence_count(nodes[1], "room") == 4,
                      timeout=10)
    gone_after = time.monotonic() - killed_at
    assert gone_after < 8, gone_after
    assert "node fell silent" in nodes[0].log()
    survivors = [c for i, c in enumerate(clients) if i % 3 != 2]
    assert survivors[0].call("room", "room", "still-here") == [0]
    assert wait_until(lambda: all(c.messages == ["still-here"] for c in survivors[1:]))
    for c in survivors:
        c.close()


def test_postgresql_restart_costs_only_cross_node_delivery_meanwhile(cluster, postgres):
    nodes = cluster(2)
    a, a2, b = Client(nodes[0]), Client(nodes[0]), Client(nodes[1])
    for c in (a, a2, b):
        c.subscribe("room")
    assert wait_until(lambda: presence_count(nodes[0], "room") == 3)
    postgres.stop()
    try:
        assert wait_until(lambda: "PostgreSQL unreachable" in nodes[0].log(), timeout=10)
        # Local delivery goes on.
        assert a.call("room", "room", "during") == [0]
        assert wait_until(lambda: a2.messages == ["during"])
        time.sleep(1.5)
    finally:
        postgres.start()
    assert wait_until(lambda: "PostgreSQL reachable again" in nodes[0].log() and
                      "PostgreSQL reachable again" in nodes[1].log(), timeout=20), nodes[0].log()[-2000:]
    assert wait_until(lambda: presence_count(nodes[0], "room") == 3 and presence_count(nodes[1], "room") == 3, timeout=10)
    assert a.call("room", "room", "after") == [0]
    assert wait_until(lambda: b.messages[-1:] == ["after"], timeout=5), b.messages
    # What was sent during the outage did not cross (documented in docs/deployment.md).
    assert "during" not in b.messages
    assert nodes[0].log().count("PostgreSQL unreachable") == 1
    for c in (a, a2, b):
        c.close()


def test_a_node_that_cannot_reach_postgresql_serves_its_own_clients(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Tests" / "plugins" / "cluster_probe.c", directory / "probe.so")
    from conftest import free_port
    node = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                "--cluster", f"postgres://sio@127.0.0.1:{free_port()}/sio"])
    a, b = Client(node), Client(node)
    b.subscribe("room")
    assert a.call("room", "room", "local") == [0]
    assert wait_until(lambda: b.messages == ["local"])
    assert wait_until(lambda: "PostgreSQL unreachable" in node.log(), timeout=10)
    assert admin(node, "/stats")[1]["cluster"]["connected"] is False
    a.close()
    b.close()


@pytest.mark.parametrize("url", ["mysql://x@y/z", "postgres://host/db", "postgres://u@h/", "postgres://u@h/db?channel=Bad-Name",
                                 "postgres://u@h/db?nope=1"])
def test_a_bad_cluster_url_is_refused_at_start(url):
    result = subprocess.run([str(BUILD_DIR / "sio"), "serve", "--port", "0", "--no-admin", "--cluster", url],
                            capture_output=True, text=True, timeout=15)
    assert result.returncode != 0 and "--cluster" in result.stderr, result.stderr


@pytest.mark.parametrize("language", ["c", "swift"])
def test_the_chat_demo_across_three_nodes_in_chromium(browser, start_server, postgres, tmp_path, language):  # noqa: F811
    from plugins import swift_plugin
    directory = plugin_dir(tmp_path)
    if language == "c":
        build_c(ROOT / "Plugins" / "chat-c" / "chat.c", directory / "chat.so")
    else:
        swift_plugin("ChatSwiftPlugin", directory / "chat.so")
    url = postgres.url(channel="chat_" + uuid.uuid4().hex[:10])
    nodes = [start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--static", str(ROOT / "Plugins" / "chat-web"), "--cluster", url]) for _ in range(3)]
    assert wait_until(lambda: all(len(peers(n)) == 2 for n in nodes), timeout=15)
    context = browser.new_context()
    ada, bob, cy = (context.new_page() for _ in range(3))

    def texts(page, selector):
        return page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)")

    def join(page, name):
        page.fill("#name", name)
        page.click("#name-form button")

    try:
        for page, node in zip((ada, bob, cy), nodes):
            page.goto(f"{node.url}/room.html?id=1")
        join(ada, "ada")
        ada.wait_for_selector("#chat:not(.hidden)")
        # The name is in use on another node.
        bob.wait_for_function("typeof io !== 'undefined'")
        assert wait_until(lambda: any(m["value"] == "ada" for m in admin(nodes[1], "/presence?channel=room-1")[1]["members"]))
        join(bob, "ada")
        bob.wait_for_function("document.getElementById('name-error').textContent.includes('in use')")
        join(bob, "bob")
        bob.wait_for_selector("#chat:not(.hidden)")
        assert sorted(texts(bob, "#users li")) == ["ada", "bob"]
        ada.wait_for_function("document.querySelectorAll('#users li').length === 2")
        join(cy, "cy")
        cy.wait_for_selector("#chat:not(.hidden)")
        assert sorted(texts(cy, "#users li")) == ["ada", "bob", "cy"]
        # A message from node 1 reaches the pages of nodes 2 and 3, once.
        ada.fill("#message", "hello from one")
        ada.click("#message-form button")
        for page in (ada, bob, cy):
            page.wait_for_function("[...document.querySelectorAll('#messages li.said')].some(li => li.textContent.includes('hello from one'))")
        time.sleep(0.3)
        assert len(cy.query_selector_all("#messages li.said")) == 1
        # Leaving on node 2 is seen on node 3.
        bob.close()
        cy.wait_for_function("document.querySelectorAll('#users li').length === 2")
        assert "bob left" in texts(cy, "#messages li")
    finally:
        context.close()


def test_the_deploy_script_runs_three_nodes_and_postgresql_behind_nginx(tmp_path):
    """deploy/cluster/start, as docs/deployment.md gives it: one client through nginx, one on each
    node directly; the chat's join notice reaches all of them; SIGTERM stops everything."""
    from conftest import free_port
    nodes = []
    while len(nodes) < 3:
        port = free_port()
        if all(abs(port - other) > 1 for other in nodes):
            nodes.append(port)
    port = free_port()
    env = dict(os.environ, SIO=str(BUILD_DIR / "sio"), PORT=str(port), NODE_PORTS=" ".join(map(str, nodes)),
               PG_PORT=str(free_port()), STATE=str(tmp_path / "state"))
    env.pop("SIO_CLUSTER", None)
    script = subprocess.Popen([str(ROOT / "deploy" / "cluster" / "start")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"

        def up():
            try:
                return all(len(peers(type("N", (), {"admin_port": p + 1})())) == 2 for p in nodes)
            except OSError:
                return False

        assert wait_until(up, timeout=40), script.stdout.read() if script.poll() is not None else "nodes did not meet"
        watchers = []
        for node_port in nodes:
            client = socketio.Client(reconnection=False)
            client.messages = []
            client.on("message", client.messages.append)
            client.connect(f"http://127.0.0.1:{node_port}", transports=["websocket"])
            assert client.call("__subscribe__", "room-1", timeout=5) is True
            watchers.append(client)
        ada = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)
        ada.connect(url, transports=["polling", "websocket"])
        assert ada.call("__subscribe__", "room-1", timeout=5) is True
        ada.send({"room": "1", "action": "start", "name": "ada"})
        assert wait_until(lambda: all({"action": "join", "name": "ada"} in w.messages for w in watchers), timeout=10), \
            [w.messages for w in watchers]

        def node_of(sid):
            for node_port in nodes:
                with urllib.request.urlopen(f"http://127.0.0.1:{node_port + 1}/sockets", timeout=5) as reply:
                    if any(s["id"] == sid for s in json.loads(reply.read())["sockets"]):
                        return node_port
            return None

        # SIGKILL the node nginx sent ada to: ada reconnects, through nginx, to another node.
        first_sid = ada.get_sid()
        landed = node_of(first_sid)
        assert landed is not None
        victim = subprocess.run(["pgrep", "-f", f"serve --port {landed} "], capture_output=True, text=True).stdout.split()
        assert len(victim) == 1, victim
        os.kill(int(victim[0]), signal.SIGKILL)
        assert wait_until(lambda: ada.connected and ada.get_sid() not in (None, first_sid), timeout=15)
        again = node_of(ada.get_sid())
        assert again is not None and again != landed
        for client in watchers + [ada]:
            client.disconnect()
    finally:
        os.killpg(script.pid, signal.SIGTERM)
        script.wait(30)
    assert wait_until(lambda: subprocess.run(["pgrep", "-f", "|".join(map(str, nodes)) + f"|{tmp_path}|-p {env['PG_PORT']} "],
                                             capture_output=True).returncode != 0, timeout=15), \
        "processes of the deploy script outlived it"


def test_a_node_that_stops_cleanly_leaves_presence_at_once(cluster):
    nodes = cluster(2)
    a, b = Client(nodes[0]), Client(nodes[1])
    a.subscribe("room")
    b.subscribe("room")
    assert wait_until(lambda: presence_count(nodes[0], "room") == 2)
    stopped_at = time.monotonic()
    assert nodes[1].stop() == 0
    # Its sockets' disconnects and its goodbye arrive before it exits: no node timeout.
    assert wait_until(lambda: presence_count(nodes[0], "room") == 1, timeout=5)
    assert time.monotonic() - stopped_at < 3
    assert wait_until(lambda: "cluster: node left" in nodes[0].log())
    assert peers(nodes[0]) == []
    a.close()
