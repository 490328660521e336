"""ABI 1.3 (issue 15): handlers that finish later. A C plugin defers on_connect, on_subscribe
and on_message and completes them from threads of its own; a real server and python-socketio
clients check what the client sees, the order of what it sent meanwhile, the timeout, the
socket leaving first, and misuse. The example plugin Plugins/token-check-c is served too."""
import subprocess
import threading
import time

import pytest
import socketio

from conftest import BUILD_DIR, ROOT, wait_until
from plugins import SOURCES, build_c, plugin_dir
from test_plugins import client, subscribe

SIO_ERR_INVALID = 4
SIO_ERR_STATE = 5


@pytest.fixture
def deferring(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    build_c(SOURCES / "deferring.c", directory / "deferring.so")
    return start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                "--pending-timeout", "1000"])


def refused(server, auth, wait_timeout=5):
    errors = []
    c = socketio.Client(reconnection=False)
    c.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        c.connect(server.url, transports=["websocket"], auth=auth, wait_timeout=wait_timeout)
    assert wait_until(lambda: errors)
    return errors[0]["message"]


def test_a_connection_is_decided_on_another_thread_while_other_sockets_are_served(deferring):
    slow = {}

    def connect_slowly():
        started = time.monotonic()
        slow["client"] = client(deferring, auth={"mode": "accept", "delay": "700"})
        slow["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=connect_slowly)
    thread.start()
    time.sleep(0.2)
    # While that connection waits for its check, the same server thread serves another socket.
    other = client(deferring)
    assert other.call("later", (0, "quick"), timeout=5) == ("quick", "done")
    assert thread.is_alive(), "the slow connection is still waiting"
    thread.join(10)
    assert slow["seconds"] >= 0.65
    assert slow["client"].connected and slow["client"].call("later", (0, "x"), timeout=5) == ("x", "done")

    assert refused(deferring, {"mode": "refuse", "delay": "100"}) == "bad token"
    assert refused(deferring, {"mode": "fail"}) == "token service down"
    assert refused(deferring, {"mode": "pending-without-defer"}) == "returned SIO_PENDING without api->defer"
    # Never completed: refused at --pending-timeout (1,000 ms), logged with the plugin.
    assert refused(deferring, {"mode": "never"}) == "timed out"
    assert "deferred event not completed in time" in deferring.log() and "plugin=deferring 1.0.0" in deferring.log()
    for c in (other, slow["client"]):
        c.disconnect()


def test_what_the_client_sends_meanwhile_waits_in_order_behind_a_deferred_message(deferring):
    seen = []
    lock = threading.Lock()

    def record(item):
        with lock:
            seen.append(item)

    c = client(deferring, noted=lambda *args: record(("noted", list(args))))
    for transport_round in range(2):
        seen.clear()
        c.emit("later", (400, "first"), callback=lambda *args: record(("ack", list(args))))
        c.emit("note", "second")
        c.emit("later", (0, "third"), callback=lambda *args: record(("ack", list(args))))
        c.emit("note", "fourth")
        assert wait_until(lambda: len(seen) == 4)
        assert seen == [("ack", ["first", "done"]), ("noted", ["second"]), ("ack", ["third", "done"]), ("noted", ["fourth"])]
    c.disconnect()


def test_a_message_completed_as_failed_refused_or_never_raises_on_error_and_releases_the_socket(deferring):
    errors = []
    c = client(deferring, error_seen=lambda *args: errors.append(args[0] if args else None))
    c.emit("fail_later", 50)
    assert wait_until(lambda: "deferring: database down" in errors)
    c.emit("refuse_later", 0)
    assert wait_until(lambda: "deferring: a message cannot be refused" in errors)
    # An ack that is not a JSON array is refused by complete (SIO_ERR_INVALID): the ticket stays
    # out until the timeout, then the socket goes on.
    c.emit("bad_ack_later")
    assert c.call("later", (0, "after"), timeout=5) == ("after", "done")
    assert wait_until(lambda: any("not completed within 1000 ms" in e for e in errors if e))
    assert f"with status {SIO_ERR_INVALID}" in deferring.log()
    c.emit("never")
    assert c.call("later", (0, "after never"), timeout=5) == ("after never", "done")
    c.disconnect()


def test_a_subscription_is_accepted_or_refused_later_and_other_events_cannot_defer(deferring):
    c = client(deferring)
    assert subscribe(c, "vip-ok") is True
    assert c.call("__subscribe__", "vip-x", timeout=5) == (False, "members only")
    assert subscribe(c, "plain") is True
    assert c.call("__unsubscribe__", "plain", timeout=5) is True
    assert wait_until(lambda: f"defer in on_unsubscribe returned {SIO_ERR_STATE} (ticket 0)" in deferring.log())
    c.disconnect()


def test_misuse_of_defer_and_complete_is_refused(deferring):
    c = client(deferring)
    # defer OK, a second defer in one call, a bad decision, bad ack JSON, an unknown ticket, a
    # NULL plugin handle, and a ticket was written.
    assert c.call("misuse", timeout=5) == (0, SIO_ERR_STATE, SIO_ERR_INVALID, SIO_ERR_INVALID, SIO_ERR_STATE, SIO_ERR_STATE, 1)
    # That handler returned SIO_OK: its ticket was withdrawn.
    assert c.call("complete_withdrawn", timeout=5) == SIO_ERR_STATE
    c.emit("pending-without-defer")
    assert c.call("later", (0, "still served"), timeout=5) == ("still served", "done")
    assert "returned SIO_PENDING without api->defer" in deferring.log()
    c.disconnect()


def test_a_completion_after_the_socket_left_gets_sio_err_state(deferring):
    c = client(deferring)
    c.emit("later", (600, "too late"))
    time.sleep(0.1)
    c.disconnect()
    assert wait_until(lambda: f"with status {SIO_ERR_STATE}" in deferring.log())
    # A connection whose client gave up before the answer: one on_finish, then SIO_ERR_STATE.
    finishes = deferring.log().count("deferring: finish")
    gave_up = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        gave_up.connect(deferring.url, transports=["websocket"], auth={"mode": "accept", "delay": "600"}, wait_timeout=0.2)
    gave_up.disconnect()
    assert wait_until(lambda: deferring.log().count(f"with status {SIO_ERR_STATE}") == 2)
    assert wait_until(lambda: deferring.log().count("deferring: finish") == finishes + 1)
    time.sleep(0.3)
    assert deferring.log().count("deferring: finish") == finishes + 1


def test_the_token_check_example_over_both_transports_and_across_a_reload(start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    source = ROOT / "Plugins" / "token-check-c" / "token_check.c"
    build_c(source, directory / "token-check.so", optimize="-O2")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("s3cret ada\nhunter2 grace\n")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"TOKEN_CHECK_FILE": str(tokens), "TOKEN_CHECK_DELAY_MS": "150"})
    ada = client(server, auth={"token": "s3cret"})
    grace = client(server, auth={"token": "hunter2"}, transports=("polling",))
    assert ada.call("whoami", timeout=5) == "ada"
    assert grace.call("whoami", timeout=5) == "grace"
    assert refused(server, {"token": "wrong"}) == "invalid token"
    assert refused(server, None) == "a token is required"

    # Checks in flight while the plugin is replaced: the retiring version answers its queue.
    joined = []

    def connect(token):
        joined.append(client(server, auth={"token": token}))

    threads = [threading.Thread(target=connect, args=(t,)) for t in ("s3cret", "hunter2", "s3cret")]
    for t in threads:
        t.start()
    time.sleep(0.05)
    build_c(source, directory / "token-check.so", optimize="-O1")
    result = subprocess.run([str(BUILD_DIR / "sio"), "reload", "--admin", f"127.0.0.1:{server.admin_port}"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    for t in threads:
        t.join(10)
    assert len(joined) == 3 and all(c.connected for c in joined)
    assert sorted(c.call("whoami", timeout=5) for c in joined) == ["ada", "ada", "grace"]
    for c in [ada, grace, *joined]:
        c.disconnect()


def test_async_swift_handlers(start_server, tmp_path):
    from plugins import Trace, swift_plugin
    directory = plugin_dir(tmp_path)
    swift_plugin("SwiftProbePlugin", directory / "swift-probe.so")
    trace = Trace(tmp_path / "trace.txt")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)],
                          env={"SIO_TRACE_FILE": str(trace.path)})
    started = time.monotonic()
    seen = []
    c = client(server, auth={"name": "ada", "async": "slow"}, **{"upper-done": lambda *args: seen.append(("done", args))})
    assert time.monotonic() - started >= 0.25, "the async connect handler's sleep held the acknowledgement"
    assert refused(server, {"async": "refuse"}) == "async says no"

    # The ack comes from the task; what the client sent meanwhile waits behind it.
    c.emit("slow-upper", "shout", callback=lambda *args: seen.append(("ack", args)))
    assert c.call("whoami", timeout=5) == ("ada", "/socket.io/")
    seen.append(("whoami", None))
    assert wait_until(lambda: len(seen) == 3)
    # The task's emit goes out as it runs; its ack with the completion; then the held whoami.
    assert seen == [("done", ("/socket.io/",)), ("ack", ("SHOUT",)), ("whoami", None)]

    # A thrown error raises on_error; refusal and acceptance of a subscription come from the task.
    c.emit("slow-throw")
    assert wait_until(lambda: any(e == "error" and "async thrown" in x for (_, e, x) in trace.events(c.get_sid())))
    assert subscribe(c, "async-yes") is True
    assert c.call("__subscribe__", "async-no", timeout=5) == (False, "async members only")
    c.disconnect()
