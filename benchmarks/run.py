#!/usr/bin/env python3
"""Every benchmark scenario against sio (C relay plugin) and the python-socketio reference, in one
invocation: servers pinned to CPU 0, the load generator (sio-load, SwiftNIO) to CPU 1. Writes
docs/benchmarks.md and docs/benchmarks-*.png. Called by benchmarks/run after the release build."""
import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = ROOT / ".build" / "release"
DOCS = ROOT / "docs"
SERVER_CPU, LOAD_CPU = "0", "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """One server process pinned to SERVER_CPU."""

    def __init__(self, kind, workdir, plugin=None):
        self.kind = kind
        self.port = free_port()
        if kind == "sio":
            plugins = workdir / f"plugins-{time.monotonic_ns()}"
            plugins.mkdir()
            os.chmod(plugins, 0o755)
            shutil.copy(plugin, plugins / "relay.so")
            os.chmod(plugins / "relay.so", 0o755)
            command = [str(RELEASE / "sio"), "serve", "--port", str(self.port), "--no-admin", "--threads", "1",
                       "--plugins", str(plugins), "--log-level", "warning"]
            env = dict(os.environ, SOCKETIO_MESSAGE_LOG_FORMAT="none")
        else:
            command = [sys.executable, str(ROOT / "benchmarks" / "reference" / "app.py"), "--port", str(self.port)]
            env = dict(os.environ)
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *command], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=raise_fd_limit)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{kind} did not start")
        time.sleep(0.5)

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(*args, timeout=600):
    command = ["taskset", "-c", LOAD_CPU, str(RELEASE / "sio-load"), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=raise_fd_limit)
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    if not lines:
        (pathlib.Path(tempfile.gettempdir()) / "sio-load-failure.log").write_text(result.stderr)
        raise RuntimeError(f"sio-load {' '.join(map(str, args))} failed; its stderr is in /tmp/sio-load-failure.log")
    return json.loads(lines[-1])


def idle_rss(kind, workdir, plugin, connections):
    server = Server(kind, workdir, plugin)
    try:
        before = server.rss_kib()
        process = subprocess.Popen(["taskset", "-c", LOAD_CPU, str(RELEASE / "sio-load"), "idle", "--port", str(server.port),
                                    "--connections", str(connections)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, preexec_fn=raise_fd_limit)
        first = json.loads(process.stdout.readline())
        time.sleep(2)
        after = server.rss_kib()
        process.stdin.close()
        process.wait(60)
        return {"connections": connections, "ready": first["ready"], "rss_before_kib": before, "rss_after_kib": after,
                "kib_per_connection": (after - before) / max(1, first["ready"])}
    finally:
        server.stop()


def with_server(kind, workdir, plugin, body):
    server = Server(kind, workdir, plugin)
    try:
        return body(server)
    finally:
        server.stop()


def handler_cost(workdir, plugin, quick):
    """Server CPU per relayed message at a fixed publish rate, measured from /proc."""
    def body(server):
        cpu0 = server.cpu_seconds()
        result = load("channels", "--port", server.port, "--clients", 1000, "--group", 10, "--rate", 5,
                      "--duration", 3 if quick else 8)
        cpu = server.cpu_seconds() - cpu0
        result["server_cpu_us_per_publish"] = cpu / max(1, result["sent"]) * 1e6
        return result
    return with_server("sio", workdir, plugin, body)


def versions():
    def run(*command):
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "?"
    packages = run(sys.executable, "-m", "pip", "list", "--format", "json")
    found = {p["name"].lower(): p["version"] for p in json.loads(packages or "[]")}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "swift": run("swift", "--version").splitlines()[0] if run("swift", "--version") else "?",
        "python": platform.python_version(),
        "python-socketio": found.get("python-socketio", "?"), "python-engineio": found.get("python-engineio", "?"),
        "aiohttp": found.get("aiohttp", "?"), "uvloop": found.get("uvloop", "?"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs (a smoke test of the harness)")
    parser.add_argument("--report-only", action="store_true", help="rewrite docs/benchmarks.md from docs/benchmarks.json")
    args = parser.parse_args()
    if args.report_only:
        write_report(json.loads((DOCS / "benchmarks.json").read_text()))
        return
    quick = args.quick
    duration = 2 if quick else 5
    results = {"versions": versions(), "quick": quick}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        relay_c = workdir / "relay-c.so"
        noop_c = workdir / "noop-c.so"
        cc = ["cc", "-std=c11", "-shared", "-fPIC", "-O2", f"-I{ROOT / 'include'}"]
        subprocess.run([*cc, "-o", str(relay_c), str(ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
        subprocess.run([*cc, "-DRELAY_NOOP", "-o", str(noop_c), str(ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
        relay_swift = RELEASE / "libRelaySwiftPlugin.so"
        kinds = ["sio", "python"]

        print("idle connections", flush=True)
        sizes = [1000, 2000] if quick else [1000, 10000, 19000]
        results["idle"] = {k: [idle_rss(k, workdir, relay_c, n) for n in sizes] for k in kinds}

        print("fan-out at the maximum rate", flush=True)
        subscriber_counts = [10, 100] if quick else [10, 100, 1000, 10000]
        results["fanout_max"] = {
            k: [with_server(k, workdir, relay_c, lambda s, n=n, size=size: load(
                "fanout", "--port", s.port, "--subscribers", n, "--size", size, "--duration", duration))
                for n in subscriber_counts for size in (32, 1024)]
            for k in kinds}

        print("fan-out at a fixed rate", flush=True)
        # 10 messages/s to 1000 subscribers (10,000 deliveries/s) for both servers, and sio alone
        # at 100,000 deliveries/s, the latency target.
        fixed = [(1000, 10)] if not quick else [(100, 10)]
        results["fanout_fixed"] = {
            k: [with_server(k, workdir, relay_c, lambda s, n=n, rate=rate, size=size: load(
                "fanout", "--port", s.port, "--subscribers", n, "--size", size, "--rate", rate, "--duration", duration))
                for n, rate in fixed for size in (32, 1024)]
            for k in kinds}
        results["fanout_target"] = with_server("sio", workdir, relay_c, lambda s: load(
            "fanout", "--port", s.port, "--subscribers", 100 if quick else 1000, "--size", 32,
            "--rate", 100 if quick else 100, "--duration", duration))

        print("many small channels", flush=True)
        clients = 1000 if quick else 10000
        results["channels"] = {k: with_server(k, workdir, relay_c, lambda s: load(
            "channels", "--port", s.port, "--clients", clients, "--group", 10, "--rate", 5, "--duration", duration))
            for k in kinds}

        print("connect rate", flush=True)
        results["connect"] = {
            "sio": with_server("sio", workdir, relay_c, lambda s: load("connect", "--port", s.port, "--count", 2000 if quick else 20000)),
            "python": with_server("python", workdir, relay_c, lambda s: load("connect", "--port", s.port, "--count", 1000 if quick else 5000)),
        }

        print("handler cost", flush=True)
        results["handler"] = {
            "C relay": handler_cost(workdir, relay_c, quick),
            "Swift relay": handler_cost(workdir, relay_swift, quick),
            "C no-op": handler_cost(workdir, noop_c, quick),
        }

    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=1))
    write_report(results)
    print("wrote docs/benchmarks.md")


def ratio(ours, theirs, lower_is_better=False):
    if not theirs or not ours:
        return "–"
    value = theirs / ours if lower_is_better else ours / theirs
    return f"{value:.1f}×"


def write_report(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = results["versions"]
    out = []
    w = out.append
    w("# Benchmarks\n")
    w("Generated by `benchmarks/run` — do not edit by hand; run it again." + (" **Quick run: small sizes.**" if results["quick"] else "") + "\n")
    w("## Machine and versions\n")
    w(f"- {v['date']}, {v['cpu']}, {v['cores']} cores, Linux {v['kernel']}")
    w(f"- {v['swift']}; sio release build, one event-loop thread, the C relay plugin (`Plugins/relay-c`), message log off")
    w(f"- Python {v['python']}, python-socketio {v['python-socketio']} (engineio {v['python-engineio']}), aiohttp {v['aiohttp']}, uvloop {v['uvloop']}: `benchmarks/reference/app.py`")
    w("")
    w("## Method\n")
    w("Each server runs alone, pinned to CPU 0 (`taskset`); the load generator `sio-load` (SwiftNIO, one event loop, raw WebSocket "
      "Engine.IO v4 / Socket.IO v5 with the channel contract) is pinned to CPU 1 and reports its own CPU use: near 100 % means the "
      "generator, not the server, set the pace. Both servers run the same relay: `__subscribe__` joins the room, a `message` "
      "`{\"ch\": …, \"t\": …}` goes to the room except the sender. Latency is measured from the send timestamp inside each message "
      "to its arrival. Maximum rate: the publisher keeps 32 messages in flight (sent, not yet delivered to every subscriber). "
      "Ratios compare runs of the same invocation.\n")

    w("## Targets\n")
    fan = next((r for r in results["fanout_max"]["sio"] if r["subscribers"] == 1000 and r["size"] == 32), None)
    idle = results["idle"]["sio"][-1]
    target = results["fanout_target"]
    connect = results["connect"]["sio"]
    met = lambda ok: "met" if ok else "**not met**"
    w("| target | measured | |")
    w("| --- | --- | --- |")
    if fan:
        w(f"| fan-out to 1,000 subscribers ≥ 1,000,000 deliveries/s | {fan['deliveries_per_s']:,.0f} (generator CPU {fan['generator_cpu_percent']:.0f} %) | {met(fan['deliveries_per_s'] >= 1e6)} |")
    w(f"| p99 < 10 ms at 100,000 deliveries/s | p99 {target['p99_ms']:.1f} ms at {target['deliveries_per_s']:,.0f} deliveries/s | {met(target['p99_ms'] < 10)} |")
    w(f"| ≤ 4 KiB RSS per idle connection at 19,000 | {idle['kib_per_connection']:.1f} KiB at {idle['ready']:,} | {met(idle['kib_per_connection'] <= 4)} |")
    w(f"| ≥ 20,000 handshakes/s | {connect['handshakes_per_s']:,.0f} (generator CPU {connect['generator_cpu_percent']:.0f} %) | {met(connect['handshakes_per_s'] >= 20000)} |")
    ratios = [r["deliveries_per_s"] / max(1, t["deliveries_per_s"]) for r, t in zip(results["fanout_max"]["sio"], results["fanout_max"]["python"])]
    w(f"| every scenario ≥ 20× python-socketio | fan-out {min(ratios):.1f}×–{max(ratios):.1f}×, idle memory "
      f"{results['idle']['python'][-1]['kib_per_connection'] / max(0.1, idle['kib_per_connection']):.1f}×, connect "
      f"{connect['handshakes_per_s'] / max(1, results['connect']['python']['handshakes_per_s']):.1f}× | "
      f"{met(min(ratios) >= 20)} |")
    w("")

    w("Not measured yet: the long-polling scenarios (handshakes/s over polling then upgrade, deliveries/s to 1,000 "
      "long-polling clients) — `sio-load` speaks WebSocket only so far.\n")

    w("## Idle connections: RSS per connection\n")
    w("| connections | sio KiB/conn | python-socketio KiB/conn | ratio |")
    w("| --- | --- | --- | --- |")
    for ours, theirs in zip(results["idle"]["sio"], results["idle"]["python"]):
        w(f"| {ours['connections']} ({ours['ready']} / {theirs['ready']} connected) | {ours['kib_per_connection']:.1f} | "
          f"{theirs['kib_per_connection']:.1f} | {ratio(ours['kib_per_connection'], theirs['kib_per_connection'], True)} |")
    w("")

    w("## Fan-out at the maximum sustained rate\n")
    w("| subscribers | size | sio deliveries/s | python deliveries/s | ratio | sio loss | python loss | generator CPU (sio run) |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for ours, theirs in zip(results["fanout_max"]["sio"], results["fanout_max"]["python"]):
        loss = lambda r: f"{r['expected'] - r['received']}/{r['expected']}"
        w(f"| {ours['subscribers']} | {ours['size']} B | {ours['deliveries_per_s']:,.0f} | {theirs['deliveries_per_s']:,.0f} | "
          f"{ratio(ours['deliveries_per_s'], theirs['deliveries_per_s'])} | {loss(ours)} | {loss(theirs)} | {ours['generator_cpu_percent']:.0f} % |")
    w("")

    w("## Fan-out at a fixed rate: latency\n")
    w("| subscribers | msgs/s | size | sio p50 / p99 / max ms | python p50 / p99 / max ms | p99 ratio |")
    w("| --- | --- | --- | --- | --- | --- |")
    for ours, theirs in zip(results["fanout_fixed"]["sio"], results["fanout_fixed"]["python"]):
        lat = lambda r: f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.1f}"
        w(f"| {ours['subscribers']} | {ours['rate']} | {ours['size']} B | {lat(ours)} | {lat(theirs)} | "
          f"{ratio(ours['p99_ms'], theirs['p99_ms'], True)} |")
    t = results["fanout_target"]
    w(f"\nsio alone at {t['rate']} messages/s to {t['subscribers']} subscribers ({t['deliveries_per_s']:,.0f} deliveries/s): "
      f"p50 {t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms, max {t['max_ms']:.1f} ms, loss {t['expected'] - t['received']}/{t['expected']}.\n")

    w("## Many small channels: everyone publishing\n")
    w("| server | clients | channel size | publishes/s | deliveries/s | expected / received | p99 ms |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for kind, r in results["channels"].items():
        w(f"| {kind} | {r['clients']} ({r['ready']} connected) | {r['group']} | {r['publishes_per_s']:,.0f} | "
          f"{r['deliveries_per_s']:,.0f} | {r['expected']} / {r['received']} | {r['p99_ms']:.1f} |")
    ours, theirs = results["channels"]["sio"], results["channels"]["python"]
    w(f"\nRatio of deliveries/s: {ratio(ours['deliveries_per_s'], theirs['deliveries_per_s'])}.\n")

    w("## Connect rate (WebSocket)\n")
    w("| server | connections | handshakes/s | failed | generator CPU |")
    w("| --- | --- | --- | --- | --- |")
    for kind, r in results["connect"].items():
        w(f"| {kind} | {r['count']} | {r['handshakes_per_s']:,.0f} | {r['failed']} | {r['generator_cpu_percent']:.0f} % |")
    w(f"\nRatio: {ratio(results['connect']['sio']['handshakes_per_s'], results['connect']['python']['handshakes_per_s'])}.\n")

    w("## Handler cost\n")
    w("1,000 clients in channels of 10, each publishing 5 messages/s; server CPU time per published message.\n")
    w("| handler | server CPU µs / message | deliveries/s |")
    w("| --- | --- | --- |")
    for name, r in results["handler"].items():
        w(f"| {name} | {r['server_cpu_us_per_publish']:.1f} | {r['deliveries_per_s']:,.0f} |")
    w("")

    # Charts.
    def chart(file, title, xlabel, ylabel, series, log=False):
        fig, ax = plt.subplots(figsize=(7, 4))
        for kind, rows in series.items():
            ax.plot([x for x, _ in rows], [y for _, y in rows], marker="o", label=kind)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(DOCS / file)
        plt.close(fig)

    chart("benchmarks-fanout.png", "Fan-out at the maximum sustained rate", "subscribers of one channel",
          "deliveries/s (32 B)", {kind: [(r["subscribers"], r["deliveries_per_s"]) for r in results["fanout_max"][kind]
                                         if r["size"] == 32] for kind in ("sio", "python")}, log=True)
    chart("benchmarks-idle.png", "Memory per idle connection", "idle connections", "RSS KiB per connection",
          {kind: [(r["connections"], r["kib_per_connection"]) for r in results["idle"][kind]] for kind in ("sio", "python")})
    w("![fan-out](benchmarks-fanout.png)\n\n![idle memory](benchmarks-idle.png)\n")

    profile = DOCS / "benchmarks-profile.md"
    if profile.exists():
        w(profile.read_text())
    (DOCS / "benchmarks.md").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
