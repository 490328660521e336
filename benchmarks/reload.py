#!/usr/bin/env python3
"""Reload benchmark: the longest event delay while plugins are reloaded under load, and the
memory each reload costs, for a C and a Swift plugin; then the dispatch pause of each reload
with 200 clients sending 10,000 events/s (sio-load's many-channels scenario through the C relay
plugin, release build). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/reload.py [--reloads 40] [--clients 200]

Needs `swift build` (for sio and the Swift test plugin), `swift build -c release --product sio`
and `--product sio-load` (benchmarks/run builds both), and cc.
"""
import argparse
import asyncio
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "interop"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from conftest import ServerProcess  # noqa: E402
from load import run_load  # noqa: E402
from plugins import SOURCES, build_c, swift_plugin  # noqa: E402
from run import rss_kib  # noqa: E402


def reload_now(admin_port):
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port}/reload", method="POST", data=b"{}",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def measure(kind, versions, reloads, clients, rate, workdir):
    plugins = workdir / f"plugins-{kind}"
    plugins.mkdir()
    os.chmod(plugins, 0o755)
    live = plugins / "versioned.so"
    shutil.copyfile(versions["v1"], live)
    os.chmod(live, 0o755)
    server = ServerProcess("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(plugins), "--no-watch"],
                           {"SOCKETIO_MESSAGE_LOG_FORMAT": "none"})
    windows = []
    memory = {}

    async def during(started):
        await asyncio.sleep(2.0)
        memory["before"] = rss_kib(server.proc.pid)
        for i in range(reloads):
            shutil.copyfile(versions["v2" if i % 2 == 0 else "v1"], live)
            begin = time.monotonic()
            await asyncio.to_thread(reload_now, server.admin_port)
            windows.append((begin, time.monotonic()))
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)
        memory["after"] = rss_kib(server.proc.pid)

    pingers = asyncio.run(run_load(server.port, clients, rate, during))
    server.stop()
    delays_all, delays_reload = [], []
    for p in pingers:
        for _, _, sent, received, _ in p.answers:
            delay = (received - sent) * 1000
            delays_all.append(delay)
            if any(b - 0.05 <= sent <= e + 0.05 for b, e in windows):
                delays_reload.append(delay)
    baseline = [d for d in delays_all]
    return {
        "kind": kind,
        "events": len(delays_all),
        "p50_ms": statistics.median(baseline),
        "p99_ms": sorted(baseline)[int(len(baseline) * 0.99)],
        "max_during_reload_ms": max(delays_reload) if delays_reload else float("nan"),
        "reload_ms": statistics.median([(e - b) * 1000 for b, e in windows]),
        "rss_per_reload_kib": (memory["after"] - memory["before"]) / reloads,
        "image_kib": os.path.getsize(versions["v1"]) / 1024,
        "disconnects": sum(p.disconnected for p in pingers),
    }


def measure_pause(workdir, reloads, clients=200, rate=50.0):
    """Reloads the C relay every 0.4 s while sio-load's channels scenario runs: `clients` clients
    in channels of 10, each publishing `rate` events/s, every one relayed by the plugin."""
    release = ROOT / ".build" / "release"
    plugins = workdir / "plugins-pause"
    plugins.mkdir()
    os.chmod(plugins, 0o755)
    builds = [build_c(ROOT / "Plugins" / "relay-c" / "relay.c", workdir / f"relay-{level}.so", optimize=f"-O{level}")
              for level in (1, 2)]
    live = plugins / "relay.so"
    shutil.copyfile(builds[0], live)
    os.chmod(live, 0o755)
    environment = {"SOCKETIO_MESSAGE_LOG_FORMAT": "none", "SIO_BUILD_DIR": str(release)}
    server = subprocess.Popen([str(release / "sio"), "serve", "--port", "0", "--admin-port", "0", "--plugins", str(plugins),
                               "--no-watch"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, **environment})
    output = []
    ports = {}
    import threading

    def pump():
        for line in server.stdout:
            output.append(line)
            for key in ("admin", "listening"):
                if f"sio: {key} on " in line:
                    ports[key] = int(line.rsplit(":", 1)[1])
    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 20
    while "listening" not in ports and time.monotonic() < deadline:
        time.sleep(0.05)
    duration = 4 + reloads * 0.4
    load = subprocess.Popen([str(release / "sio-load"), "channels", "--port", str(ports["listening"]), "--clients", str(clients),
                             "--group", "10", "--rate", str(rate), "--duration", str(duration)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    for i in range(reloads):
        shutil.copyfile(builds[(i + 1) % 2], live)
        reload_now(ports["admin"])
        time.sleep(0.4)
    result = json.loads(load.communicate(timeout=duration + 60)[0].strip().splitlines()[-1])
    server.terminate()
    server.wait(10)
    pauses = sorted(int(part.split("=")[1]) / 1000 for line in output if "plugin reloaded" in line
                    for part in line.split() if part.startswith("pause_us="))
    return {
        "reloads": len(pauses),
        "events_per_s": result["publishes_per_s"],
        "pause_p50_ms": statistics.median(pauses),
        "pause_p99_ms": pauses[min(len(pauses) - 1, int(len(pauses) * 0.99))],
        "pause_max_ms": pauses[-1],
        "delivery_p99_ms": result["p99_ms"],
        "disconnected": result["disconnected"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reloads", type=int, default=40)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=int, default=10, help="events/s per client")
    parser.add_argument("--pause-only", action="store_true", help="only the dispatch pause at 10,000 events/s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pause = measure_pause(pathlib.Path(tmp), args.reloads)
    print(f"\nDispatch pause per reload, C relay, {pause['reloads']} reloads every 0.4 s, 200 clients sending "
          f"{pause['events_per_s']:.0f} events/s (release build)\n")
    print("| pause p50 ms | pause p99 ms | pause max ms | delivery p99 ms | disconnects |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {pause['pause_p50_ms']:.3f} | {pause['pause_p99_ms']:.3f} | {pause['pause_max_ms']:.3f} | "
          f"{pause['delivery_p99_ms']:.1f} | {pause['disconnected']} |")
    if args.pause_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        builds = workdir / "builds"
        builds.mkdir()
        c = {v: build_c(SOURCES / "versioned.c", builds / f"c-{v}.so", [f'VERSION="{v}"']) for v in ("v1", "v2")}
        s1 = swift_plugin("SwiftVersionedPlugin", builds / "swift-v1.so")
        s2 = builds / "swift-v2.so"
        s2.write_bytes(s1.read_bytes().replace(b"sio-test-plugin-version:1", b"sio-test-plugin-version:2"))
        os.chmod(s2, 0o755)
        results = [measure("C", c, args.reloads, args.clients, args.rate, workdir),
                   measure("Swift", {"v1": s1, "v2": s2}, args.reloads, args.clients, args.rate, workdir)]
    print(f"\n{args.clients} clients x {args.rate} events/s, {args.reloads} reloads via the admin endpoint\n")
    print("| plugin | events | p50 ms | p99 ms | longest delay during a reload, ms | reload takes, ms | RSS per reload, KiB | image size, KiB | disconnects |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['kind']} | {r['events']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_during_reload_ms']:.1f} | "
              f"{r['reload_ms']:.1f} | {r['rss_per_reload_kib']:.0f} | {r['image_kib']:.0f} | {r['disconnects']} |")


if __name__ == "__main__":
    main()
