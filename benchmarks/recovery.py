#!/usr/bin/env python3
"""Connection state recovery (issue 14), recovery on against off in one invocation (servers on
CPU 0, generators on CPU 1, as benchmarks/run): fan-out 1 → 1,000 deliveries/s, idle memory per
connection, memory per kept message, and the recovery of 1,000 clients cut for one second at
once (all recovered? time to the first replayed message). Prints a Markdown table; writes
docs/benchmarks-recovery.md. Run by benchmarks/recovery after the release build."""
import argparse
import asyncio
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from run import LOAD_CPU, ROOT, Server, idle_rss, load  # noqa: E402

WINDOW_MS = "120000"


def fanout(workdir, relay, recovery, duration):
    server = Server("sio", workdir, relay, extra=["--recovery-window", WINDOW_MS] if recovery else [])
    try:
        return load("fanout", "--port", server.port, "--subscribers", 1000, "--rate", 0, "--duration", duration)["deliveries_per_s"]
    finally:
        server.stop()


def cpu_per_delivery(workdir, relay, recovery, duration):
    """Server CPU per delivery at a fixed 800,000 deliveries/s (8,000 messages/s to 100
    subscribers): steadier than the most deliveries/s, which also moves with the generator."""
    server = Server("sio", workdir, relay, extra=["--recovery-window", WINDOW_MS] if recovery else [])
    try:
        cpu = server.cpu_seconds()
        result = load("fanout", "--port", server.port, "--subscribers", 100, "--size", 32, "--rate", 8000, "--duration", duration)
        return (server.cpu_seconds() - cpu) / max(1, result["received"]) * 1e9
    finally:
        server.stop()


def kept_memory(workdir, relay, duration):
    """RSS once 1,000 subscribers of one channel got 1,000 messages/s for `duration` and left
    (their sockets kept for recovery, the channel's history with what they were sent), recovery
    on against off."""
    rss = {}
    for recovery in (False, True):
        server = Server("sio", workdir, relay, extra=["--recovery-window", WINDOW_MS, "--recovery-buffer", str(64 << 20)]
                        if recovery else [])
        try:
            result = load("fanout", "--port", server.port, "--subscribers", 1000, "--rate", 1000, "--duration", duration)
            time.sleep(1)
            rss[recovery] = (server.rss_kib(), result["sent"])
        finally:
            server.stop()
    sent = rss[True][1]
    grown = (rss[True][0] - rss[False][0]) * 1024
    return {"rss_off_kib": rss[False][0], "rss_on_kib": rss[True][0], "sent": sent, "kept": sent * 1000,
            "bytes_per_message": grown / max(1, sent), "bytes_per_kept_message": grown / max(1, sent * 1000)}


async def recover_many(port, admin_port, clients, missed):
    """`clients` raw WebSocket clients subscribe; one message each; every connection cut at once;
    `missed` broadcasts during one second; every client reconnects with its pid and offset."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"

    async def broadcast(session, text):
        async with session.post(f"http://127.0.0.1:{admin_port}/broadcast", json={"message": text, "channel": "bench"}) as reply:
            await reply.read()

    async def packet(ws):
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"closed: {message.type}")
            if message.data == "2":
                await ws.send_str("3")
                continue
            return message.data

    async def connect(session, auth=None):
        ws = await session.ws_connect(url, autoping=False, max_msg_size=0)
        assert (await packet(ws)).startswith("0")
        await ws.send_str("40" + (json.dumps(auth) if auth else ""))
        answer = await packet(ws)
        return ws, json.loads(answer[2:])

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        first = []
        for i in range(0, clients, 100):
            first += await asyncio.gather(*(connect(session) for _ in range(min(100, clients - i))))
        for ws, _ in first:
            await ws.send_str('421["__subscribe__","bench"]')
        for ws, _ in first:
            assert (await packet(ws)).startswith("431")
        await broadcast(session, "before")
        offsets = []
        for ws, _ in first:
            offsets.append(json.loads((await packet(ws))[2:])[-1])
        for ws, _ in first:
            ws._response.connection.transport.abort()  # a network drop: no close frame
        await asyncio.sleep(0.2)
        cut_at = time.monotonic()
        for i in range(missed):
            await broadcast(session, f"missed-{i}")
            await asyncio.sleep(0.8 / missed)
        await asyncio.sleep(max(0, 1 - (time.monotonic() - cut_at)))

        async def come_back(index):
            start = time.monotonic()
            ws, answer = await connect(session, {"pid": first[index][1]["pid"], "offset": offsets[index]})
            recovered = answer.get("sid") == first[index][1]["sid"]
            got, first_at = [], None
            if recovered:
                while len(got) < missed:
                    got.append(json.loads((await packet(ws))[2:])[1])
                    first_at = first_at or time.monotonic()
            await ws.close()
            return recovered, got == [f"missed-{i}" for i in range(missed)], (first_at - start) * 1000 if first_at else None

        start = time.monotonic()
        results = await asyncio.gather(*(come_back(i) for i in range(clients)))
        wall = time.monotonic() - start
    times = sorted(t for _, _, t in results if t is not None)
    return {"clients": clients, "missed_per_client": missed, "recovered": sum(r for r, _, _ in results),
            "complete_and_in_order": sum(c for _, c, _ in results), "wall_s": wall,
            "first_replay_p50_ms": statistics.median(times) if times else None,
            "first_replay_p99_ms": times[int(len(times) * 0.99) - 1] if times else None}


def recovery_time(workdir, relay, clients):
    server = Server("sio", workdir, relay, extra=["--recovery-window", "10000"])
    try:
        return asyncio.run(recover_many(server.port, server.admin_port, clients, 10))
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds of off and on (1 with --quick)")
    args = parser.parse_args()
    duration = 2 if args.quick else 5
    rounds = 1 if args.quick else args.rounds
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sio-recovery-bench-"))
    relay = workdir / "relay.so"
    subprocess.run(["cc", "-std=c11", "-O2", "-shared", "-fPIC", f"-I{ROOT / 'include'}", "-o", str(relay),
                    str(ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
    try:
        off, on, cpu_off, cpu_on = [], [], [], []
        for _ in range(rounds):
            off.append(fanout(workdir, relay, False, duration))
            on.append(fanout(workdir, relay, True, duration))
            cpu_off.append(cpu_per_delivery(workdir, relay, False, duration))
            cpu_on.append(cpu_per_delivery(workdir, relay, True, duration))
        idle_off = idle_rss("sio", workdir, relay, 10000)
        idle_on = idle_rss("sio", workdir, relay, 10000, extra=["--recovery-window", WINDOW_MS])
        # Subscribed, a socket notes when it joined its channel: with recovery, that is a box.
        idle_sub_off = idle_rss("sio", workdir, relay, 10000, channel="idle")
        idle_sub_on = idle_rss("sio", workdir, relay, 10000, extra=["--recovery-window", WINDOW_MS], channel="idle")
        kept = kept_memory(workdir, relay, duration)
        # The generator in Python (asyncio, aiohttp) runs on CPU 1 with the server on CPU 0.
        import os
        os.sched_setaffinity(0, {int(LOAD_CPU)})
        recovery = recovery_time(workdir, relay, 1000)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = {"fanout_off": off, "fanout_on": on, "cpu_ns_off": cpu_off, "cpu_ns_on": cpu_on, "idle_off": idle_off, "idle_on": idle_on,
               "idle_sub_off": idle_sub_off, "idle_sub_on": idle_sub_on, "kept": kept, "recovery": recovery}
    print(json.dumps(results), flush=True)
    fan_off, fan_on = statistics.median(off), statistics.median(on)
    lines = [
        "# Connection state recovery: its cost and a recovery of 1,000 clients",
        "",
        "Written by `benchmarks/recovery` (benchmarks/recovery.py), recovery on (`--recovery-window 120000`) against off in one",
        f"invocation; server on CPU 0, generators on CPU 1; medians of {rounds} alternated round(s) of {duration} s.",
        "",
        "| | off | on | on / off |",
        "| --- | --- | --- | --- |",
        f"| fan-out 1 → 1,000, deliveries/s | {fan_off:,.0f} | {fan_on:,.0f} | {fan_on / fan_off:.3f} |",
        f"| server CPU per delivery at 800,000 deliveries/s, ns | {statistics.median(cpu_off):.0f} | "
        f"{statistics.median(cpu_on):.0f} | {statistics.median(cpu_on) / statistics.median(cpu_off):.3f} |",
        f"| idle memory per connection, KiB (10,000 WebSockets) | {idle_off['kib_per_connection']:.2f} | "
        f"{idle_on['kib_per_connection']:.2f} | {idle_on['kib_per_connection'] / idle_off['kib_per_connection']:.3f} |",
        f"| same, each subscribed to a channel | {idle_sub_off['kib_per_connection']:.2f} | "
        f"{idle_sub_on['kib_per_connection']:.2f} | {idle_sub_on['kib_per_connection'] / idle_sub_off['kib_per_connection']:.3f} |",
        "",
        f"Memory for what is kept: {kept['bytes_per_message']:,.0f} bytes per message sent to a channel of 1,000, "
        f"{kept['bytes_per_kept_message']:.2f} per message per recipient ({kept['sent']:,} messages at 1,000/s to "
        f"1,000 sockets that then left and are kept; RSS {kept['rss_off_kib']:,} KiB off, {kept['rss_on_kib']:,} KiB on): "
        "a broadcast to one channel is kept once, in the channel's history, whatever the number of recipients; what goes "
        "to one socket, or to several channels or a namespace at once, is kept by each recipient, a reference (8 bytes) "
        "each.",
        "",
        f"Recovery of {recovery['clients']:,} clients cut at once for one second ({recovery['missed_per_client']} messages missed each; "
        "a Python asyncio generator, so times are upper bounds): "
        f"{recovery['recovered']:,} recovered, {recovery['complete_and_in_order']:,} with every missed message once and in order; "
        f"time from reconnecting to the first replayed message p50 {recovery['first_replay_p50_ms']:.1f} ms, "
        f"p99 {recovery['first_replay_p99_ms']:.1f} ms; all done in {recovery['wall_s']:.2f} s.",
        "",
    ]
    (ROOT / "docs" / "benchmarks-recovery.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
