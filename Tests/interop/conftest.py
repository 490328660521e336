"""Fixtures that start real server processes on free ports.

The binaries come from `swift build` (scripts/test builds them first); SIO_BUILD_DIR points
elsewhere when needed.
"""
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD_DIR = pathlib.Path(os.environ.get("SIO_BUILD_DIR", ROOT / ".build" / "debug"))


def free_port():
    """A TCP port nobody listens on now (for servers the tests start besides sio)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, binary, args=(), env=None, preexec_fn=None):
        environment = dict(os.environ)
        environment.update(env or {})
        self.output = []
        args = list(args)
        if os.environ.get("SIO_TEST_ISOLATED") and binary == "sio" and args[:1] == ["serve"] and "--plugins" in args \
                and "--isolate-plugins" not in args:
            args.append("--isolate-plugins")
        self.proc = subprocess.Popen(
            [str(BUILD_DIR / binary), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            text=True,
            preexec_fn=preexec_fn,
        )
        self.port = None
        self.host = None
        self.admin_port = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.output.append(line)
                admin = re.search(r"sio: admin on ([0-9.:a-f]+):(\d+)", line)
                if admin:
                    self.admin_port = int(admin.group(2))
                match = re.search(r"sio: listening on ([0-9.:a-f]+):(\d+)", line)
                if match:
                    self.host, self.port = match.group(1), int(match.group(2))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(20) or self.port is None:
            self.proc.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.output))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        return "".join(self.output)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not stop within %ss" % timeout)
        return self.proc.returncode


@pytest.fixture
def start_server():
    started = []

    def start(binary="sio-interop-server", args=(), env=None, **kwargs):
        server = ServerProcess(binary, args, env, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def interop_server(start_server):
    return start_server()


def wait_until(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session")
def postgres():
    """The run's own PostgreSQL (tests/interop/postgres.py), started on first use."""
    from postgres import TempPostgres
    server = TempPostgres(free_port())
    yield server
    server.close()
