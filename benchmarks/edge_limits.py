#!/usr/bin/env python3
"""Figures for the limits of docs/operations.md ("Facing the network"), from a release build:

- 2,000 connections that send half a request head and stop, with the default --header-timeout
  (10 s): when the server closes them, and what the wait costs it in CPU and memory;
- descriptor exhaustion (RLIMIT_NOFILE 1,024, 1,500 connections): the server's CPU while it is
  out of descriptors, its log lines, and whether the waiting connections are served once
  descriptors come back;
- --max-connections-per-ip 100 against 150 connections from one address: how many are served,
  and the statuses of the others.

Prints figures; asserts nothing. Run: .venv/bin/python benchmarks/edge_limits.py
"""
import os
import pathlib
import resource
import selectors
import socket
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402


def start(*args, limit=None):
    port = run.free_port()

    def prepare():
        run.raise_fd_limit()
        if limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    # The log goes to a file: a pipe nobody reads would stall the server once full.
    log = open(f"/tmp/sio-edge-{port}.log", "w+")
    process = subprocess.Popen(["taskset", "-c", run.SERVER_CPU, str(run.RELEASE / "sio"), "serve", "--port", str(port),
                                "--no-admin", "--threads", "1", "--log-level", "info", *args],
                               stdout=log, stderr=subprocess.STDOUT, text=True, preexec_fn=prepare)
    process.log_path = log.name
    while "listening on" not in pathlib.Path(log.name).read_text():
        time.sleep(0.05)
    return process, port


def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid):
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))


def half_sent_heads(count=2000):
    process, port = start()
    try:
        before = rss(process.pid)
        sockets = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            sockets.append(s)
        began, cpu0 = time.monotonic(), cpu(process.pid)
        held = rss(process.pid) - before
        selector = selectors.DefaultSelector()
        for s in sockets:
            selector.register(s, selectors.EVENT_READ)
        closed, first, last = 0, None, None
        while closed < count and time.monotonic() - began < 30:
            for key, _ in selector.select(timeout=1):
                try:
                    data = key.fileobj.recv(4096)
                except ConnectionResetError:
                    data = b""
                if not data:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    closed += 1
                    now = time.monotonic() - began
                    first = first if first is not None else now
                    last = now
        used = cpu(process.pid) - cpu0
        print(f"half-sent heads: {count:,} connections held {held / 1024:.1f} MiB; all {closed:,} closed by the server "
              f"{first:.2f}-{last:.2f} s after they stopped (--header-timeout 10 s); server CPU over the wait {used:.2f} s",
              flush=True)
    finally:
        process.kill()


def descriptor_exhaustion(limit=1024, count=1500):
    process, port = start(limit=limit)
    try:
        held = []
        for _ in range(count):
            held.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(1)
        cpu0 = cpu(process.pid)
        time.sleep(5)
        used = cpu(process.pid) - cpu0
        for s in held:
            s.close()
        time.sleep(0.5)
        probe = socket.create_connection(("127.0.0.1", port), timeout=5)
        probe.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = probe.recv(4096).startswith(b"HTTP/1.1 200")
        process.terminate()
        process.wait(10)
        log = pathlib.Path(process.log_path).read_text()
        print(f"descriptor exhaustion: RLIMIT_NOFILE {limit}, {count:,} connections: server CPU {used / 5 * 100:.1f} % over 5 s "
              f"out of descriptors; {log.count('accepting paused')} log line(s); a new session after they closed: "
              f"{'answered' if answered else 'NOT answered'}")
    finally:
        process.kill()


def per_address_limit(limit=100, count=150):
    process, port = start("--max-connections-per-ip", str(limit))
    try:
        statuses = {}
        held = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
            status = s.recv(4096).split(b" ", 2)[1].decode()
            statuses[status] = statuses.get(status, 0) + 1
            held.append(s)
        print(f"--max-connections-per-ip {limit}, {count} connections from one address: {statuses}")
    finally:
        process.kill()


if __name__ == "__main__":
    half_sent_heads()
    descriptor_exhaustion()
    per_address_limit()
