#!/usr/bin/env python3
"""The scale-out benchmark (issue 13), both systems in one invocation and the same topology:
three server processes, one publisher on node A, 1,000 subscribers spread over the three.
sio nodes join through PostgreSQL (`--cluster`); the peer is python-socketio with its Redis
manager (AsyncRedisManager), the usual way it scales out. Servers and their broker (PostgreSQL,
Redis) share CPU 0, the load generator has CPU 1. Writes docs/benchmarks-cluster.md and its
json. Called by benchmarks/cluster after the release build."""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Tests" / "interop"))
from run import ROOT, SERVER_CPU, Server, free_port, load  # noqa: E402
from postgres import TempPostgres  # noqa: E402

DOCS = ROOT / "docs"


def tree_cpu(pid):
    """CPU seconds of a process and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                children.setdefault(int(stat[1]), []).append((int(entry), (int(stat[11]) + int(stat[12]))))
            except (OSError, ValueError, IndexError):
                pass
    total, todo = 0, [pid]
    try:
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total = int(stat[11]) + int(stat[12])
    except OSError:
        pass
    while todo:
        for child, ticks in children.get(todo.pop(), []):
            total += ticks
            todo.append(child)
    return total / os.sysconf("SC_CLK_TCK")


class Node(Server):
    """A server of benchmarks/run.py, joined to the others through `broker` (PostgreSQL for sio,
    Redis for python-socketio)."""

    def __init__(self, kind, workdir, broker=None, plugin=None):
        extra = ([] if not broker else ["--cluster", broker] if kind == "sio" else ["--redis", broker])
        super().__init__(kind, workdir, plugin, extra=extra)

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats", timeout=5) as reply:
            return json.loads(reply.read())


def start_nodes(kind, workdir, count, broker, plugin):
    nodes = [Node(kind, workdir, broker, plugin) for _ in range(count)]
    if kind == "sio" and broker and count > 1:
        deadline = time.monotonic() + 20
        while any(len(n.stats()["cluster"]["peers"]) != count - 1 for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("sio nodes did not meet")
            time.sleep(0.1)
    time.sleep(0.5)
    return nodes


def measured(nodes, brokers, body):
    """Runs body(); adds the CPU seconds per second of each node and of the broker."""
    cpu0 = [tree_cpu(n.proc.pid) for n in nodes] + [tree_cpu(b) for b in brokers]
    wall0 = time.monotonic()
    result = body()
    seconds = time.monotonic() - wall0
    cpu1 = [tree_cpu(n.proc.pid) for n in nodes] + [tree_cpu(b) for b in brokers]
    used = [b - a for a, b in zip(cpu0, cpu1)]
    result["cpu_seconds_nodes"] = [round(u, 3) for u in used[:len(nodes)]]
    result["cpu_seconds_broker"] = round(sum(used[len(nodes):]), 3)
    result["cpu_percent_nodes"] = [round(u / seconds * 100, 1) for u in used[:len(nodes)]]
    result["cpu_percent_broker"] = round(sum(used[len(nodes):]) / seconds * 100, 1)
    return result


def fanout(nodes, subscribers_on, rate, duration, size=32, subscribers=1000, window=32):
    ports = ",".join(str(nodes[i].port) for i in subscribers_on)
    return load("fanout", "--port", nodes[0].port, "--subscriber-ports", ports, "--subscribers", subscribers,
                "--rate", rate, "--size", size, "--window", window, "--duration", duration)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    args = parser.parse_args()
    duration = 2 if args.quick else 5
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="sio-cluster-bench-"))
    relay = workdir / "relay.so"
    subprocess.run(["cc", "-std=c11", "-O2", "-shared", "-fPIC", f"-I{ROOT / 'include'}", "-o", str(relay),
                    str(ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
    postgres = TempPostgres(free_port())
    subprocess.run(["taskset", "-a", "-pc", SERVER_CPU, str(postgres.proc.pid)], check=True, stdout=subprocess.DEVNULL)
    postmaster = int(open(os.path.join(postgres.data, "postmaster.pid")).readline())
    subprocess.run(["taskset", "-a", "-pc", SERVER_CPU, str(postmaster)], check=True, stdout=subprocess.DEVNULL)
    redis_port = free_port()
    redis = subprocess.Popen(["taskset", "-c", SERVER_CPU, "redis-server", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no", "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    brokers = {"sio": (postgres.url(channel="bench"), [postmaster]), "python-socketio": (f"redis://127.0.0.1:{redis_port}", [redis.pid])}
    results = {"duration_s": duration, "systems": {}}
    try:
        for kind in ("sio", "python-socketio"):
            url, broker_pids = brokers[kind]
            figures = {}
            nodes = start_nodes(kind, workdir, 3, url, relay)
            try:
                figures["cluster_max"] = measured(nodes, broker_pids, lambda: fanout(nodes, [0, 1, 2], 0, duration))
                figures["cluster_fixed"] = measured(nodes, broker_pids, lambda: fanout(nodes, [0, 1, 2], 10, duration))
                # One subscriber on node B, 100-byte messages as fast as they go: the ceiling of
                # cross-node messages through the broker.
                figures["cross_node_ceiling"] = measured(
                    nodes, broker_pids, lambda: fanout(nodes, [1], 0, duration, size=100, subscribers=1, window=4096))
                if kind == "sio":
                    figures["node_a_cluster"] = nodes[0].stats()["cluster"]
            finally:
                for n in nodes:
                    n.stop()
            single = start_nodes(kind, workdir, 1, None, relay)
            try:
                figures["single_fixed"] = measured(single, [], lambda: fanout(single, [0], 10, duration))
                figures["single_max"] = measured(single, [], lambda: fanout(single, [0], 0, duration))
            finally:
                single[0].stop()
            if kind == "sio":
                # The cost of --cluster on one node: alone (no other node: nothing is published)
                # and with an idle second node (every broadcast is published).
                for name, count in (("cluster_alone_max", 1), ("cluster_with_idle_peer_max", 2)):
                    nodes = start_nodes(kind, workdir, count, url, relay)
                    try:
                        figures[name] = measured(nodes[:1], [], lambda: fanout(nodes, [0], 0, duration))
                    finally:
                        for n in nodes:
                            n.stop()
            results["systems"][kind] = figures
            print(json.dumps({kind: figures}), flush=True)
    finally:
        redis.terminate()
        redis.wait(10)
        postgres.close()
        shutil.rmtree(workdir, ignore_errors=True)
    (DOCS / "benchmarks-cluster.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_report(results)


def write_report(results):
    sio, peer = results["systems"]["sio"], results["systems"]["python-socketio"]

    def d(figures, key):
        return figures[key]["deliveries_per_s"]

    def ratio(a, b):
        return f"{a / b:.1f}×" if b else "n/a"

    ceiling = sio["cross_node_ceiling"]
    node = sio.get("node_a_cluster", {})

    def per_message(figures):
        """CPU microseconds per cross-node message: sender, receiver, broker."""
        received = max(1, figures["received"])
        cpu = figures["cpu_seconds_nodes"]
        return [cpu[0] / received * 1e6, cpu[1] / received * 1e6, figures["cpu_seconds_broker"] / received * 1e6]

    ours, theirs = per_message(ceiling), per_message(peer["cross_node_ceiling"])
    per_notification = node.get("messages_sent", 0) / max(1, node.get("notifications_sent", 1))
    lines = [
        "# Scale-out benchmark: three nodes",
        "",
        "Written by `benchmarks/cluster` (benchmarks/cluster.py), both systems in one invocation. Three server",
        "processes, one publisher on node A, 1,000 subscribers spread over the three; sio joins them through",
        "PostgreSQL (`--cluster`), python-socketio through Redis (`AsyncRedisManager`). Servers and broker on",
        "CPU 0, the load generator (sio-load) on CPU 1; one event loop per sio node (`--threads 1`). "
        f"Runs of {results['duration_s']} s.",
        "",
        "| | sio | python-socketio | ratio |",
        "| --- | --- | --- | --- |",
        f"| deliveries/s, most sustained (3 nodes) | {d(sio, 'cluster_max'):,.0f} | {d(peer, 'cluster_max'):,.0f} | "
        f"{ratio(d(sio, 'cluster_max'), d(peer, 'cluster_max'))} |",
        f"| p50 / p99 at 10,000 deliveries/s, 3 nodes (ms) | {sio['cluster_fixed']['p50_ms']:.2f} / {sio['cluster_fixed']['p99_ms']:.2f} | "
        f"{peer['cluster_fixed']['p50_ms']:.2f} / {peer['cluster_fixed']['p99_ms']:.2f} | |",
        f"| p50 / p99 at 10,000 deliveries/s, one node alone (ms) | {sio['single_fixed']['p50_ms']:.2f} / {sio['single_fixed']['p99_ms']:.2f} | "
        f"{peer['single_fixed']['p50_ms']:.2f} / {peer['single_fixed']['p99_ms']:.2f} | |",
        f"| cross-node p99 minus single-node p99 (ms) | {sio['cluster_fixed']['p99_ms'] - sio['single_fixed']['p99_ms']:+.2f} | "
        f"{peer['cluster_fixed']['p99_ms'] - peer['single_fixed']['p99_ms']:+.2f} | |",
        f"| cross-node messages/s of 100 B, A → one subscriber on B | {d(sio, 'cross_node_ceiling'):,.0f} | "
        f"{d(peer, 'cross_node_ceiling'):,.0f} | {ratio(d(sio, 'cross_node_ceiling'), d(peer, 'cross_node_ceiling'))} |",
        f"| deliveries/s, one node alone, most sustained | {d(sio, 'single_max'):,.0f} | {d(peer, 'single_max'):,.0f} | "
        f"{ratio(d(sio, 'single_max'), d(peer, 'single_max'))} |",
        "",
        "What limits the ceiling: CPU. Both nodes and the broker share CPU 0, and one cross-node message costs "
        f"{ours[0]:.1f} µs on the sending node (reading the client, the relay, queueing), {ours[1]:.1f} µs on the "
        f"receiving node and {ours[2]:.1f} µs in PostgreSQL: {sum(ours):.1f} µs in all, about "
        f"{1e6 / sum(ours):,.0f} messages/s on one core (python-socketio over Redis: {theirs[0]:.0f} + {theirs[1]:.0f} + "
        f"{theirs[2]:.0f} µs). Node A sent {node.get('messages_sent', 0):,} messages in "
        f"{node.get('notifications_sent', 0):,} notifications over its run ({per_notification:.1f} per NOTIFY; a "
        "NOTIFY carries up to 7,900 bytes, and one round trip up to 16 of them).",
        "",
        "`--cluster` on one node (fan-out 1 → 1,000, most sustained deliveries/s):",
        "",
        "| | deliveries/s | against no cluster |",
        "| --- | --- | --- |",
        f"| no `--cluster` | {d(sio, 'single_max'):,.0f} | 1.000 |",
        f"| `--cluster`, alone | {d(sio, 'cluster_alone_max'):,.0f} | {d(sio, 'cluster_alone_max') / d(sio, 'single_max'):.3f} |",
        f"| `--cluster`, an idle second node | {d(sio, 'cluster_with_idle_peer_max'):,.0f} | "
        f"{d(sio, 'cluster_with_idle_peer_max') / d(sio, 'single_max'):.3f} |",
        "",
    ]
    (DOCS / "benchmarks-cluster.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
