"""Plugin safety (issue 10): no plugin file, reload sequence, stale handle, channel pattern,
blocked handler or malformed placeholder takes the server down or freezes it. Each case runs a
real server process with real compiled plugins."""
import os
import random
import struct
import subprocess
import shutil
import signal
import threading
import socket
import time

import pytest
import socketio
import websocket

from conftest import BUILD_DIR, wait_until
from plugins import SOURCES, Trace, build_c, plugin_dir, swift_plugin


def serve(start_server, directory, *extra, env=None):
    return start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory), *extra],
                        env=env)


def connected(server, transports=("websocket",)):
    c = socketio.Client(reconnection=False)
    c.connect(server.url, transports=list(transports), wait_timeout=5)
    return c


def raw_socket(server):
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=5)
    ws.recv()
    ws.send("40")
    sid = ws.recv()[len('40{"sid":"'):-2]
    return ws, sid


def closed(ws):
    try:
        while True:
            frame = ws.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE or frame.data in (b"1", "1"):
                return True
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return True


@pytest.fixture
def probe(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "50-probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = serve(start_server, directory, env={"SIO_TRACE_FILE": str(trace.path)})
    server.trace = trace
    server.directory = directory
    return server


# 7. Placeholders that name no attachment are refused as "illegal attachments".

@pytest.mark.parametrize("packet,attachments", [
    ('451-["message",{"_placeholder":true,"num":5}]', 1),
    ('451-["message",{"_placeholder":true,"num":-1}]', 1),
    ('451-["message",{"_placeholder":true,"num":1e300}]', 1),
    ('451-["message",{"_placeholder":true,"num":"0"}]', 1),
    ('42["message",{"_placeholder":true,"num":0}]', 0),
    ('450-["message",[{"_placeholder":true,"num":0}]]', 0),
])
def test_placeholder_without_its_attachment_closes_that_client_only(probe, packet, attachments):
    bystander = connected(probe)
    ws, sid = raw_socket(probe)
    ws.send(packet)
    for _ in range(attachments):
        ws.send_binary(b"\x01\x02")
    assert closed(ws)
    assert wait_until(lambda: any(e == "finish" for (_, e, _) in probe.trace.events(sid)))
    events = probe.trace.events(sid)
    assert [e for (_, e, _) in events] == ["connect", "error", "disconnect", "finish"], events
    assert "illegal attachments" in events[1][2]
    assert bystander.call("send", "still here", timeout=5) == 0
    bystander.disconnect()


# 8. A link out of the plugins directory is checked where it leads.

def test_symlink_to_a_file_in_a_world_writable_directory_is_refused(start_server, tmp_path):
    shared = tmp_path / "world"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp
    target = build_c(SOURCES / "probe.c", shared / "probe.so")
    os.chmod(target, 0o644)
    directory = plugin_dir(tmp_path)
    os.symlink(target, directory / "linked.so")
    server = serve(start_server, directory)
    refused = [line for line in server.log().splitlines() if "plugin refused" in line]
    assert len(refused) == 1 and "linked.so" in refused[0], server.log()
    assert f"the link target's directory {shared} is writable by group or others" in refused[0]
    # The same link into a directory only the server's user can write is loaded.
    os.chmod(shared, 0o755)
    server = serve(start_server, directory)
    assert "plugin refused" not in server.log() and "plugin loaded" in server.log()


# 3. Socket handles are checkable: stale, foreign and forged ones give SIO_ERR_STATE (5).

def test_stale_foreign_and_forged_socket_handles_are_refused(probe):
    c = connected(probe)
    assert c.call("keep_handle", timeout=5) == 0
    time.sleep(0.6)  # the plugin's thread used the handle 300 ms after the event
    assert c.call("late_status", timeout=5) == 5
    assert c.call("foreign_handle", timeout=5) == 5
    assert c.call("forged_handle", timeout=5) == [5, 5, 5, 5]
    assert c.call("send", "alive", timeout=5) == 0
    assert probe.proc.poll() is None
    c.disconnect()


# 2. An event that outlives several reloads never runs in an unmapped image.

def versions(tmp_path, *extra):
    builds = tmp_path / "builds"
    builds.mkdir(exist_ok=True)
    made = {v: build_c(SOURCES / "versioned.c", builds / f"versioned-{v}.so", [f'VERSION="{v}"']) for v in ("v1", "v2")}
    for name, define in extra:
        made[name] = build_c(SOURCES / "versioned.c", builds / f"{name}.so", ['VERSION="bad"', define], werror=False)
    return made


def install(source, live):
    shutil.copyfile(source, live)
    os.chmod(live, 0o755)


def versioned_server(start_server, tmp_path, *args, extra=(), env=None):
    """A server with v1 of the versioned plugin live, and one connected client."""
    builds = versions(tmp_path, *extra)
    directory = plugin_dir(tmp_path)
    live = directory / "versioned.so"
    install(builds["v1"], live)
    server = serve(start_server, directory, *args, env=env)
    return builds, live, server, connected(server)


def slow_call(client, ms):
    result = {}
    thread = threading.Thread(target=lambda: result.update(answer=client.call("slow", ms, timeout=10)))
    thread.start()
    return thread, result


@pytest.mark.parametrize("first", ["unchanged", "refused"])
def test_event_outliving_two_reloads_finishes_in_a_mapped_image(start_server, tmp_path, first):
    builds, live, server, c = versioned_server(start_server, tmp_path, "--no-watch", extra=(("no-entry", "BROKEN_NO_ENTRY"),))
    for _ in range(3):
        thread, result = slow_call(c, 150)
        time.sleep(0.03)
        if first == "refused":
            install(builds["no-entry"], live)
        server.proc.send_signal(signal.SIGHUP)
        time.sleep(0.03)
        install(builds["v2"], live)
        server.proc.send_signal(signal.SIGHUP)
        thread.join(10)
        assert (result.get("answer") or ())[:2] == ("v1", 150), (result, server.log()[-2000:])
        assert server.proc.poll() is None, server.log()[-2000:]
        assert wait_until(lambda: c.call("ping", 1, timeout=5)[:2] == ("v2", 1))
        install(builds["v1"], live)
        server.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: c.call("ping", 2, timeout=5)[:2] == ("v1", 2))
    assert c.connected
    c.disconnect()


def test_copy_then_sighup_with_the_watcher_on(start_server, tmp_path):
    builds, live, server, c = versioned_server(start_server, tmp_path)
    for round in range(4):
        version = "v2" if round % 2 == 0 else "v1"
        thread, result = slow_call(c, 150)
        time.sleep(0.02)
        install(builds[version], live)
        server.proc.send_signal(signal.SIGHUP)
        thread.join(10)
        assert result.get("answer") is not None and result["answer"][1] == 150
        assert wait_until(lambda: c.call("ping", round, timeout=5)[:2] == (version, round))
    assert server.proc.poll() is None
    c.disconnect()


# 1. A truncated or corrupt ELF file is refused; the serving version goes on.

def admin_reload(server):
    return subprocess.run([str(BUILD_DIR / "sio"), "reload", "--admin", f"127.0.0.1:{server.admin_port}"],
                          capture_output=True, text=True, timeout=20)


def test_truncated_plugin_at_startup_is_refused(start_server, tmp_path):
    builds = versions(tmp_path)
    directory = plugin_dir(tmp_path)
    data = builds["v1"].read_bytes()
    (directory / "versioned.so").write_bytes(data[:3000])
    os.chmod(directory / "versioned.so", 0o755)
    server = serve(start_server, directory)
    refused = [line for line in server.log().splitlines() if "plugin refused" in line]
    assert len(refused) == 1 and "truncated" in refused[0], server.log()
    c = connected(server)
    assert c.connected
    c.disconnect()


def test_truncated_builds_renamed_over_a_live_plugin_are_refused(start_server, tmp_path):
    builds, live, server, c = versioned_server(start_server, tmp_path, "--no-watch")
    data = builds["v2"].read_bytes()
    for length in [1, 63, 64, 200, 1000, 3000, 4096, 5000, 8192, 12000, len(data) // 2, len(data) - 100, len(data) - 1]:
        incoming = live.parent / ".incoming"
        incoming.write_bytes(data[:length])
        os.chmod(incoming, 0o755)
        os.rename(incoming, live)  # the write-then-rename the docs call safe
        result = admin_reload(server)
        assert result.returncode != 0 and f"{live}: refused: " in result.stdout, (length, result.stdout)
        assert c.call("ping", length, timeout=5)[:2] == ("v1", length)
    assert f"plugin refused: {live}: not a loadable shared library: truncated" in server.log()
    install(builds["v2"], live)
    assert admin_reload(server).returncode == 0
    assert c.call("ping", 0, timeout=5)[:2] == ("v2", 0)
    c.disconnect()


def elf_structure_ranges(data):
    """Byte ranges of the ELF header, program headers and dynamic section."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    ranges = [(0, 64), (phoff, phoff + phentsize * phnum)]
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 2:
            ranges.append((p_offset, p_offset + p_filesz))
    return ranges


def test_corrupt_elf_structures_never_take_the_server_down(start_server, tmp_path):
    builds, live, server, c = versioned_server(start_server, tmp_path, "--no-watch")
    original = builds["v2"].read_bytes()
    ranges = elf_structure_ranges(original)
    rng = random.Random(10)
    outcomes = {"refused": 0, "reloaded": 0}
    for round in range(40):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            start, end = rng.choice(ranges)
            position = rng.randrange(start, end)
            data[position] = rng.choice([0, 0xff, rng.randrange(256), data[position] ^ (1 << rng.randrange(8))])
        incoming = live.parent / ".incoming"
        incoming.write_bytes(bytes(data))
        os.chmod(incoming, 0o755)
        os.rename(incoming, live)
        result = admin_reload(server)
        assert server.proc.poll() is None, server.log()[-3000:]
        outcomes["refused" if "refused" in result.stdout else "reloaded"] += 1
        install(builds["v1"], live)
        admin_reload(server)
        assert c.connected and server.proc.poll() is None, (result.stdout, server.log()[-3000:])
        assert c.call("ping", round, timeout=5)[:2] == ("v1", round)
    print("\ncorrupt builds:", outcomes)
    assert outcomes["refused"] > 0
    assert c.connected
    c.disconnect()


# 5. Channel patterns run on RE2: time linear in the name, whatever the pattern.

def test_nested_quantifier_pattern_cannot_freeze_the_server(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = serve(start_server, directory, "--threads", "2",
                   env={"SIO_PROBE_PATTERN": "(a+)+$", "SIO_TRACE_FILE": str(trace.path)})
    others = [connected(server) for _ in range(6)]
    attacker = connected(server)
    for length in (31, 64, 250):
        assert attacker.call("__subscribe__", "a" * length + "!", timeout=5) is True
    assert attacker.call("__subscribe__", "a" * 200, timeout=5) is True
    assert [x for (_, e, x) in trace.events(attacker.get_sid()) if e == "room-subscribe"] == ["a" * 200]
    for c in others:
        assert c.call("send", "alive", timeout=5) == 0
    fresh = connected(server)
    assert fresh.connected
    for c in others + [attacker, fresh]:
        c.disconnect()


@pytest.mark.parametrize("pattern", [r"(room)\1", "(?=room)", "(?<!x)room"])
def test_patterns_re2_cannot_run_are_refused_at_load(start_server, tmp_path, pattern):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    server = serve(start_server, directory, env={"SIO_PROBE_PATTERN": pattern})
    refused = [line for line in server.log().splitlines() if "plugin refused" in line]
    assert len(refused) == 1 and "channel pattern" in refused[0] and "does not compile" in refused[0], server.log()


# 4. retire runs once per loaded version, refused builds never touch the serving version, and
#    the count handed over is exact.

def retire_lines(path):
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("mode", ["in-process", "isolated"])
def test_refused_builds_never_touch_the_serving_version(start_server, tmp_path, mode):
    """Isolated too: the new build is mapped, described (and an ABI 1.1 build's init run) in a
    runner of its own while the serving runner goes on."""
    builds = versions(tmp_path, ("init-fails", "BROKEN_INIT"), ("no-entry", "BROKEN_NO_ENTRY"))
    truncated = tmp_path / "builds" / "truncated.so"
    truncated.write_bytes(builds["v2"].read_bytes()[:5000])
    directory = plugin_dir(tmp_path)
    live = directory / "versioned.so"
    install(builds["v1"], live)
    retires = tmp_path / "retire.log"
    isolate = ["--isolate-plugins"] if mode == "isolated" else []
    server = serve(start_server, directory, "--no-watch", *isolate, env={"SIO_RETIRE_LOG": str(retires)})
    c = connected(server)
    count = 0
    for refused in ("init-fails", "no-entry", "truncated", "init-fails"):
        for i in range(5):
            count += 1
            assert c.call("ping", i, timeout=5) == ("v1", i, count)
        install(truncated if refused == "truncated" else builds[refused], live)
        result = admin_reload(server)
        assert "refused" in result.stdout, result.stdout
        assert retire_lines(retires) == [], "a refused build made the serving version retire"
    for i, version in enumerate(["v2", "v1", "v2"]):
        install(builds[version], live)
        assert admin_reload(server).returncode == 0
        count += 1
        assert c.call("ping", i, timeout=5) == (version, i, count), "the count handed over is not exact"
    lines = retire_lines(retires)
    assert [(v, int(n)) for v, _, n in lines] == [("v1", 5 * 4), ("v2", 5 * 4 + 1), ("v1", 5 * 4 + 2)]
    assert len({instance for _, instance, _ in lines}) == 3, "a version was retired twice"
    os.remove(live)
    admin_reload(server)
    assert retire_lines(retires)[-1][0] == "v2" and len(retire_lines(retires)) == 4
    c.disconnect()


@pytest.mark.parametrize("mode", ["in-process", "isolated"])
def test_abi_1_0_build_whose_successor_fails_init_restarts_with_its_state(start_server, tmp_path, mode):
    """An ABI 1.0 build takes its state in init, so its successor's init runs after it retired:
    when that init fails, the retired build starts afresh from the state it handed over."""
    builds = tmp_path / "builds"
    builds.mkdir()
    old = build_c(SOURCES / "versioned.c", builds / "old.so", ['VERSION="v1"', "NO_ADOPT"])
    failing = build_c(SOURCES / "versioned.c", builds / "failing.so", ['VERSION="v2"', "NO_ADOPT", "BROKEN_INIT"], werror=False)
    good = build_c(SOURCES / "versioned.c", builds / "good.so", ['VERSION="v2"', "NO_ADOPT"])
    directory = plugin_dir(tmp_path)
    live = directory / "versioned.so"
    install(old, live)
    retires = tmp_path / "retire.log"
    isolate = ["--isolate-plugins"] if mode == "isolated" else []
    server = serve(start_server, directory, "--no-watch", *isolate, env={"SIO_RETIRE_LOG": str(retires)})
    c = connected(server)
    for i in range(3):
        assert c.call("ping", i, timeout=5) == ("v1", i, i + 1)
    install(failing, live)
    assert "refused: init failed" in admin_reload(server).stdout
    assert "plugin restarted from its handed-over state" in server.log()
    assert c.call("ping", 9, timeout=5) == ("v1", 9, 4)
    install(good, live)
    assert admin_reload(server).returncode == 0
    assert c.call("ping", 10, timeout=5) == ("v2", 10, 5)
    lines = retire_lines(retires)
    assert [(v, int(n)) for v, _, n in lines] == [("v1", 3), ("v1", 4)]
    assert lines[0][1] != lines[1][1], "each loaded instance is retired once"
    c.disconnect()


# 6. A handler that never returns stalls its own loop only; it is reported; SIGTERM still ends.

def test_blocked_handler_stalls_only_its_own_loop_and_shutdown_is_bounded(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "probe.c", directory / "probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = serve(start_server, directory, "--threads", "2", "--handler-warn-ms", "300", "--shutdown-timeout", "2000",
                   env={"SIO_TRACE_FILE": str(trace.path)})
    clients = [connected(server) for _ in range(30)]
    threads = [c.call("thread", timeout=5) for c in clients]
    assert len(set(threads)) == 2, "the clients are spread over both loops"
    blocker = clients[0]
    blocked_thread = threads[0]
    blocker.emit("block")
    started = time.monotonic()
    assert wait_until(lambda: "handler running too long" in server.log(), timeout=3)
    warned_after = time.monotonic() - started
    warning = next(line for line in server.log().splitlines() if "handler running too long" in line)
    assert "plugin=probe 1.0.0" in warning and "event=on_message" in warning and f"socket={blocker.get_sid()}" in warning
    assert warned_after < 1.3, f"the watchdog spoke after {warned_after:.1f}s"
    healthy = [c for c, t in zip(clients, threads) if t != blocked_thread]
    for c in healthy:
        assert c.call("send", "alive", timeout=5) == 0
    time.sleep(0.6)  # past the loop stall threshold: new connections avoid the stalled loop
    newcomers = [connected(server) for _ in range(10)]
    for c in newcomers:
        assert c.call("thread", timeout=5) != blocked_thread
        assert c.call("send", "alive", timeout=5) == 0
    # The operator still sees the live loop: /sockets and /metrics do not wait on the stalled one.
    import json
    import urllib.request
    asked = time.monotonic()
    listing = subprocess.run([str(BUILD_DIR / "sio"), "sockets", "--json", "--admin", f"127.0.0.1:{server.admin_port}"],
                             capture_output=True, text=True, timeout=15)
    assert listing.returncode == 0 and time.monotonic() - asked < 4, listing.stderr
    listed = {s["id"] for s in json.loads(listing.stdout)["sockets"]}
    assert {c.get_sid() for c in newcomers} <= listed and blocker.get_sid() not in listed
    asked = time.monotonic()
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/metrics", timeout=10).read().decode()
    assert "sio_connections" in metrics and time.monotonic() - asked < 4
    serving = {c.get_sid() for c in healthy + newcomers}
    began = time.monotonic()
    code = server.stop(signal.SIGTERM, timeout=10)
    assert time.monotonic() - began < 5
    assert code != 0, "sessions on the stalled loop were abandoned: the exit status says so"
    assert "abandoned" in server.log()
    finished = {s for (_, e, s, _, _) in trace.lines() if e == "finish"}
    assert serving <= finished, "every socket on a serving loop got on_finish"


def test_swift_plugin_hands_its_state_over_through_adopt(start_server, tmp_path):
    """The Swift SDK takes the state in adopt: the count survives reloads exactly."""
    builds = tmp_path / "builds"
    builds.mkdir()
    v1 = swift_plugin("SwiftVersionedPlugin", builds / "swift-v1.so")
    v2 = builds / "swift-v2.so"
    v2.write_bytes(v1.read_bytes().replace(b"sio-test-plugin-version:1", b"sio-test-plugin-version:2"))
    os.chmod(v2, 0o755)
    directory = plugin_dir(tmp_path)
    live = directory / "versioned.so"
    install(v1, live)
    server = serve(start_server, directory, "--no-watch")
    c = connected(server)
    for i in range(5):
        assert c.call("ping", i, timeout=5) == ("v1", i)
    for round, version in enumerate(["v2", "v1", "v2"]):
        install(v2 if version == "v2" else v1, live)
        assert admin_reload(server).returncode == 0
        assert c.call("state", timeout=5) == (version, 6 + round)
    c.disconnect()

