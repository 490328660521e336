"""Isolated mode (issue 11): each plugin in a runner process of its own. A handler that
segfaults, aborts, exits, overflows its stack or hangs costs its runner, never a client
connection: real server, compiled C and Swift plugins, python-socketio clients."""
import asyncio
import os
import re
import subprocess
import time

import pytest
import socketio

from conftest import BUILD_DIR, ROOT, wait_until
from load import ack_ids
from plugins import SOURCES, build_c, plugin_dir, swift_plugin


def build_crashing(directory, version="1.0.0", name="crashing.so"):
    return build_c(SOURCES / "crashing.c", directory / name, defines=(f'CRASHING_VERSION="{version}"',))


def isolated_server(start_server, directory, *extra, env=None):
    return start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                "--isolate-plugins", *extra], env=env)


def connect(server, count=1, **kwargs):
    clients = []
    for _ in range(count):
        c = socketio.Client(reconnection=False)
        c.errors = []
        c.on("error_seen", lambda *args, c=c: c.errors.append(args[0] if args else None))
        c.connect(server.url, transports=["websocket"], wait_timeout=5, **kwargs)
        clients.append(c)
    return clients


def runner_pid(client):
    return client.call("echo", timeout=5)[1]


def echo_again(client, timeout=5.0):
    """Seconds until the plugin answers again (its runner restarted)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            return client.call("echo", timeout=0.5), time.monotonic() - started
        except socketio.exceptions.TimeoutError:
            continue
    raise AssertionError("the plugin did not come back")


@pytest.mark.parametrize("how,logged", [
    ("segv", "how=signal 11"), ("abort", "how=signal 6"), ("exit", "how=exit status 3"), ("stack", "how=signal 11"),
])
def test_a_crashing_handler_costs_no_connection_and_the_plugin_is_back_within_a_second(start_server, tmp_path, how, logged):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    server = isolated_server(start_server, directory)
    clients = connect(server, 20, auth={"name": "ada"})
    before = runner_pid(clients[0])
    clients[0].emit(how)
    assert wait_until(lambda: "plugin runner crashed" in server.log())
    (handled, after), seconds = echo_again(clients[1])
    assert after != before and seconds < 1.0
    assert all(c.connected for c in clients)
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    assert 'sio_plugin_crashes_total{plugin="crashing",cause="crash"} 1' in metrics.replace(", ", ",")
    assert 'sio_plugin_restarts_total{plugin="crashing"} 1' in metrics
    # Handler time in isolated mode: from sending the event to the runner's answer.
    assert re.search(r'sio_handler_duration_seconds_count\{plugin="crashing",event="on_message"\} [1-9]', metrics.replace(", ", ","))
    line = next(l for l in server.log().splitlines() if "plugin runner crashed" in l)
    assert logged in line and "plugin=crashing 1.0.0" in line and "event=on_message" in line
    # The context lives in the server: the restarted runner reads it.
    assert clients[0].call("whoami", timeout=5) == "ada"
    assert server.proc.poll() is None
    for c in clients:
        c.disconnect()


def test_a_hung_handler_is_killed_at_the_timeout_while_other_plugins_serve(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    build_c(ROOT / "Plugins" / "echo-c" / "echo.c", directory / "echo.so")
    server = isolated_server(start_server, directory, "--handler-timeout", "600")
    hanging, other = connect(server, 2)
    got = []
    other.on("message", lambda data: got.append(data))
    hanging.emit("hang")
    time.sleep(0.2)
    # The echo plugin (another runner) answers while crashing's handler hangs.
    other.send("still here")
    assert wait_until(lambda: got == ["still here"], timeout=2)
    assert wait_until(lambda: "killed after --handler-timeout" in server.log(), timeout=3)
    assert "plugin handler ran past --handler-timeout" in server.log()
    echo_again(hanging)
    assert hanging.connected and other.connected
    for c in (hanging, other):
        c.disconnect()


def test_a_plugin_that_keeps_crashing_backs_off_then_is_marked_failed(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    # Another plugin that does not answer "echo" (so each answer is the crashing plugin's).
    build_c(SOURCES / "deferring.c", directory / "deferring.so")
    server = isolated_server(start_server, directory)
    c, = connect(server)
    for attempt in range(6):
        echo_again(c)
        c.emit("segv")
        assert wait_until(lambda: server.log().count("plugin runner crashed") == attempt + 1)
    assert wait_until(lambda: "plugin failed: it crashed more than 5 times" in server.log())
    delays = [int(x) for x in re.findall(r"delay_ms=(\d+) plugin=crashing", server.log())]
    assert delays == [0, 100, 200, 400, 800]
    listing = subprocess.run([str(BUILD_DIR / "sio"), "plugins", "--admin", f"127.0.0.1:{server.admin_port}"],
                             capture_output=True, text=True, timeout=10)
    assert "crashing 1.0.0" in listing.stdout and "failed" in listing.stdout
    assert c.call("later", (0, "the other plugin serves on"), timeout=5) == ("the other plugin serves on", "done")
    assert c.connected
    c.disconnect()


def test_a_crash_in_init_refuses_the_plugin_and_the_server_serves(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    build_c(ROOT / "Plugins" / "echo-c" / "echo.c", directory / "echo.so")
    server = isolated_server(start_server, directory, env={"CRASH_IN_INIT": "1"})
    assert wait_until(lambda: "plugin refused" in server.log() and "crashing.so" in server.log())
    c, = connect(server)
    got = []
    c.on("message", lambda data: got.append(data))
    c.send("hello")
    assert wait_until(lambda: got == ["hello"])
    c.disconnect()


def reload(server):
    result = subprocess.run([str(BUILD_DIR / "sio"), "reload", "--admin", f"127.0.0.1:{server.admin_port}"],
                            capture_output=True, text=True, timeout=30)
    return result


def test_live_reload_hands_the_state_over_to_a_new_runner_and_keeps_every_connection(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    server = isolated_server(start_server, directory)
    clients = connect(server, 5)
    for c in clients:
        c.call("echo", timeout=5)
    before = runner_pid(clients[0])  # the sixth message
    build_crashing(directory, version="2.0.0")
    result = reload(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "crashing.so: reloaded" in result.stdout
    listing = subprocess.run([str(BUILD_DIR / "sio"), "plugins", "--admin", f"127.0.0.1:{server.admin_port}"],
                             capture_output=True, text=True, timeout=10)
    assert "crashing 2.0.0" in listing.stdout and "isolated: serving" in listing.stdout
    handled, after = clients[1].call("echo", timeout=5)
    assert handled == 7 and after != before, "the count went through retire to the new version"
    assert all(c.connected for c in clients)
    # A crash after the reload restarts from the state handed over then.
    clients[0].emit("segv")
    assert wait_until(lambda: "plugin runner crashed" in server.log())
    (handled, _), _ = echo_again(clients[2])
    assert handled == 7
    for c in clients:
        c.disconnect()


def test_a_crash_in_retire_costs_only_the_handed_over_state(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    server = isolated_server(start_server, directory, env={"CRASH_IN_RETIRE": "1"})
    c, = connect(server)
    c.call("echo", timeout=5)
    build_crashing(directory, version="2.0.0")
    result = reload(server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plugin did not retire in time" in server.log()
    handled, _ = c.call("echo", timeout=5)
    assert handled == 1 and c.connected
    c.disconnect()


def test_a_swift_plugin_that_traps_is_restarted_too(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    swift_plugin("SwiftProbePlugin", directory / "swift-probe.so")
    server = isolated_server(start_server, directory)
    clients = connect(server, 3, auth={"name": "grace"})
    assert clients[0].call("whoami", timeout=5) == ("grace", "/socket.io/")
    clients[0].emit("crash")
    assert wait_until(lambda: "plugin runner crashed" in server.log())
    assert "plugin=swift-probe 2.0.0" in server.log()
    started = time.monotonic()
    while True:
        try:
            assert clients[1].call("whoami", timeout=0.5) == ("grace", "/socket.io/")
            break
        except socketio.exceptions.TimeoutError:
            assert time.monotonic() - started < 3
    assert all(c.connected for c in clients)
    for c in clients:
        c.disconnect()


def test_a_crash_while_200_clients_are_sending(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    server = isolated_server(start_server, directory)

    async def run():
        clients = []
        for _ in range(200):
            c = socketio.AsyncClient(reconnection=False)
            await c.connect(server.url, transports=["websocket"], wait_timeout=10)
            clients.append(c)
        answered = [0] * len(clients)
        stop = asyncio.Event()

        async def send(index, c):
            while not stop.is_set():
                try:
                    await c.call("echo", timeout=0.5)
                    answered[index] += 1
                except socketio.exceptions.TimeoutError:
                    pass  # in flight at the crash: delivered at most once
                await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(send(i, c)) for i, c in enumerate(clients)]
        await asyncio.sleep(1)
        await clients[0].emit("segv")
        await asyncio.sleep(0.7)
        before = list(answered)
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        connected = sum(1 for c in clients if c.connected)
        for c in clients:
            await c.disconnect()
        return connected, before, answered

    connected, before, after = asyncio.run(run())
    assert "plugin runner crashed" in server.log()
    assert connected == 200
    assert all(a > b for a, b in zip(after, before)), "every client is answered again after the restart"


def runner_pids(server):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == server.proc.pid and b"plugin-runner" in command:
            found.append(int(entry))
    return found


def test_runners_are_private_and_never_outlive_a_killed_server(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    build_c(SOURCES / "deferring.c", directory / "deferring.so")
    server = isolated_server(start_server, directory)
    c, = connect(server)
    c.call("echo", timeout=5)
    pids = runner_pids(server)
    assert len(pids) == 2
    for pid in pids:
        # The channel is an anonymous socket pair: no path another local user could open.
        assert os.readlink(f"/proc/{pid}/fd/3").startswith("socket:[")
        # One plugin per process: another plugin's memory is another address space.
        with open(f"/proc/{pid}/maps") as maps:
            mapped = maps.read()
        assert ("crashing.so" in mapped) != ("deferring.so" in mapped)
    # A runner idle for longer than a pool thread lives is still there (it is tied to the
    # server, not to the thread that started it).
    time.sleep(6)
    assert sorted(runner_pids(server)) == sorted(pids)
    c.disconnect()
    server.proc.kill()
    server.proc.wait()
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
                                      for pid in pids), timeout=5)


def test_one_plugin_isolated_by_its_file_name_next_to_one_in_process(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_crashing(directory, name="crashing.isolated.so")
    build_c(ROOT / "Plugins" / "echo-c" / "echo.c", directory / "echo.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    c, = connect(server)
    got = []
    c.on("message", lambda data: got.append(data))
    before = runner_pids(server)
    assert len(before) == 1, "only the .isolated.so file runs in a runner"
    c.emit("segv")
    assert wait_until(lambda: "plugin runner crashed" in server.log())
    c.send("in process, still here")
    assert wait_until(lambda: got == ["in process, still here"])
    assert wait_until(lambda: len(runner_pids(server)) == 1 and runner_pids(server) != before)
    listing = subprocess.run([str(BUILD_DIR / "sio"), "plugins", "--admin", f"127.0.0.1:{server.admin_port}"],
                             capture_output=True, text=True, timeout=10)
    lines = listing.stdout.splitlines()
    assert any(l.startswith("crashing 1.0.0") and "isolated: serving" in l for l in lines)
    assert any(l.startswith("echo-c ") and "isolated:" not in l for l in lines)
    # A reload of both kinds at once: the in-process one and the runner are both replaced.
    build_crashing(directory, version="2.0.0", name="crashing.isolated.so")
    result = reload(server)
    assert result.returncode == 0 and "crashing.isolated.so: reloaded" in result.stdout, result.stdout
    assert "echo.so: unchanged" in result.stdout
    assert c.connected
    c.disconnect()


def test_the_handler_timeout_times_handlers_not_waiting_events(start_server, tmp_path):
    """--handler-timeout is timed where the handler runs: an event deferred by its plugin for
    longer, and events queued behind slow handlers for longer, do not end the runner."""
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "deferring.c", directory / "deferring.so")
    build_crashing(directory)
    server = isolated_server(start_server, directory, "--handler-timeout", "400")
    deferred, queued = connect(server, 2)
    assert deferred.call("later", (900, "slow"), timeout=5) == ("slow", "done")
    # Eight 150 ms handlers in a row: the last waits 1,050 ms in the queue, runs 150 ms.
    answers = []
    for n in range(8):
        queued.emit("nap", 150, callback=lambda *args: answers.append(args))
    assert wait_until(lambda: len(answers) == 8, timeout=5), answers
    assert "handler-timeout" not in server.log() and "plugin runner crashed" not in server.log()
    for c in (deferred, queued):
        c.disconnect()


def test_a_client_sending_faster_than_the_plugin_handles_is_not_read_from(start_server, tmp_path):
    """In process, a slow handler on the loop brakes the client that feeds it. Isolated,
    messages stream to the runner: past 256 of a client's messages in flight there, the server
    stops reading from it (until half are answered) instead of queueing everything it sends."""
    import json
    import socket
    import threading
    import websocket
    directory = plugin_dir(tmp_path)
    build_crashing(directory)
    server = isolated_server(start_server, directory)
    small = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096), (socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)]
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=30,
                                     sockopt=small)
    ws.recv()
    ws.send("40")
    assert json.loads(ws.recv()[2:])["sid"]
    events, padding = 2000, "p" * 1000  # 2 ms each in the plugin: 4 s of work, 2 MB sent
    started = time.monotonic()

    def send_all():
        for n in range(events):
            ws.send(f'42{n}["nap",2,"{padding}"]')
    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    sender.join(1.5)
    # Read freely, the 2 MB would be in the server's queue to the runner within a second.
    assert sender.is_alive(), "the server read everything the client sent"
    acks = ack_ids(ws, events)
    sender.join(10)
    assert acks == list(range(events)), "lost or reordered"
    assert time.monotonic() - started >= 2 * events / 1000 * 0.9
    ws.close()


def test_isolated_plugins_hear_every_finish_at_shutdown(start_server, tmp_path):
    """Runners die with the server: the shutdown waits until they handled the last disconnects
    and finishes, for connected sockets and for those kept for recovery."""
    from plugins import Trace
    from test_recovery import Raw
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = isolated_server(start_server, directory, "--recovery-window", "60000",
                             env={"SIO_TRACE_FILE": str(trace.path)})
    here, away = Raw(server), Raw(server)
    for client in (here, away):
        assert client.call("__subscribe__", "news") == [True]
    away.cut()
    time.sleep(0.3)
    assert server.stop() == 0
    for sid in (here.connect["sid"], away.connect["sid"]):
        events = [e for (_, e, _) in trace.events(socket_id=sid)]
        assert events == ["connect", "subscribe", "disconnect", "unsubscribe", "finish"], (sid, events)
