#!/usr/bin/env python3
"""Slow consumers: a publisher sends 2 MB/s (100 messages of 20 KB a second) to a channel with a
reader in it, first alone (20 s), then for 60 s with a WebSocket client that never reads and a
long-polling client that never polls in the channel too. Prints how soon each non-reader is
dropped, the server's RSS growth, and the reader's latency and losses in both phases. Prints
figures; asserts nothing.

    .venv/bin/python benchmarks/slow_consumer.py [--seconds 60]

Uses the release build (`swift build -c release --product sio`) and the C relay plugin.
"""
import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests
import socketio
import websocket

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "interop"))
os.environ.setdefault("SIO_BUILD_DIR", str(ROOT / ".build" / "release"))
from conftest import ServerProcess  # noqa: E402
from plugins import build_c, plugin_dir  # noqa: E402
sys.path.insert(0, str(ROOT / "benchmarks"))
from run import rss_kib  # noqa: E402


def publish(url, seconds, latencies, counts):
    reader = socketio.Client(reconnection=False)
    reader.on("message", lambda data: (latencies.append((time.time() - data["t"]) * 1000), counts.append(data["n"])))
    reader.connect(url, transports=["websocket"], wait_timeout=5)
    reader.call("__subscribe__", "room", timeout=5)
    publisher = socketio.Client(reconnection=False)
    publisher.connect(url, transports=["websocket"], wait_timeout=5)
    payload = "x" * 20_000
    sent = 0
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        publisher.send({"ch": "room", "n": sent, "t": time.time(), "data": payload})
        sent += 1
        time.sleep(max(0.0, began + sent * 0.01 - time.monotonic()))
    deadline = time.monotonic() + 10
    while len(counts) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    reader.disconnect()
    publisher.disconnect()
    return sent


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = plugin_dir(pathlib.Path(tmp))
        build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so", optimize="-O2")
        server = ServerProcess("sio", ["serve", "--port", "0", "--no-admin", "--plugins", str(directory)],
                               {"SOCKETIO_MESSAGE_LOG_FORMAT": "none"})
        phases = {}
        latencies, counts = [], []
        sent = publish(server.url, 20, latencies, counts)
        phases["alone"] = (sent, counts, latencies)

        stuck = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                            timeout=5, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        stuck.recv()
        stuck.send("40")
        stuck.recv()
        stuck.send('421["__subscribe__","room"]')
        stuck.recv()
        base = f"{server.url}/socket.io/?EIO=4&transport=polling"
        sid = json.loads(requests.get(base, timeout=5).text[1:])["sid"]
        requests.post(f"{base}&sid={sid}", data="40", timeout=5)
        requests.get(f"{base}&sid={sid}", timeout=5)
        requests.post(f"{base}&sid={sid}", data='42["__subscribe__","room"]', timeout=5)
        rss_before = rss_kib(server.proc.pid)
        started = time.monotonic()
        drops = []

        def watch():
            seen = 0
            while time.monotonic() - started < args.seconds + 5:
                found = server.log().count("slow consumer dropped")
                while seen < found:
                    drops.append(time.monotonic() - started)
                    seen += 1
                time.sleep(0.05)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        latencies, counts = [], []
        peak = [rss_before]

        def sample():
            while time.monotonic() - started < args.seconds:
                peak[0] = max(peak[0], rss_kib(server.proc.pid))
                time.sleep(0.5)
        threading.Thread(target=sample, daemon=True).start()
        sent = publish(server.url, args.seconds, latencies, counts)
        phases["with non-readers"] = (sent, counts, latencies)
        rss_after = rss_kib(server.proc.pid)
        server.stop()
    print(f"\nnon-readers dropped after: {', '.join(f'{d:.1f} s' for d in drops) or 'never'}; "
          f"server RSS {rss_before} KiB before, peak {peak[0]} KiB, {rss_after} KiB after {args.seconds} s "
          f"(growth {peak[0] - rss_before} KiB at the peak)\n")
    print("| phase | messages sent | reader received | lost | reader p50 ms | reader p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (sent, counts, latencies) in phases.items():
        ordered = sorted(latencies)
        print(f"| {name} | {sent} | {len(counts)} | {sent - len(set(counts))} | {statistics.median(ordered):.2f} | "
              f"{ordered[int(len(ordered) * 0.99)]:.2f} |")


if __name__ == "__main__":
    main()
