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


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User and system CPU seconds a process has used."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """One server process pinned to SERVER_CPU. sio runs as `sio serve` does by default, with its
    admin endpoint and metrics on; metrics=False adds --no-metrics."""

    def __init__(self, kind, workdir, plugin=None, metrics=True, isolated=False, extra=()):
        self.kind = kind
        self.port = free_port()
        self.admin_port = None
        if kind == "sio":
            plugins = workdir / f"plugins-{time.monotonic_ns()}"
            plugins.mkdir()
            os.chmod(plugins, 0o755)
            shutil.copy(plugin, plugins / "relay.so")
            os.chmod(plugins / "relay.so", 0o755)
            self.admin_port = free_port()
            command = [str(RELEASE / "sio"), "serve", "--port", str(self.port), "--admin-port", str(self.admin_port),
                       "--threads", "1", "--plugins", str(plugins), "--log-level", "warning"]
            if not metrics:
                command.append("--no-metrics")
            if isolated:
                command.append("--isolate-plugins")
            env = dict(os.environ, SOCKETIO_MESSAGE_LOG_FORMAT="none")
        else:
            command = [sys.executable, str(ROOT / "benchmarks" / "reference" / "app.py"), "--port", str(self.port)]
            env = dict(os.environ)
        command += list(extra)
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
        return rss_kib(self.proc.pid)

    def cpu_seconds(self):
        """The server's CPU and its plugin runners' (isolated mode), which inherit its CPU."""
        total = cpu_seconds(self.proc.pid)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                if int(stat[1]) == self.proc.pid:
                    total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                continue
        return total

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


def idle_rss(kind, workdir, plugin, connections, extra=(), channel=None):
    server = Server(kind, workdir, plugin, extra=extra)
    try:
        before = server.rss_kib()
        process = subprocess.Popen(["taskset", "-c", LOAD_CPU, str(RELEASE / "sio-load"), "idle", "--port", str(server.port),
                                    "--connections", str(connections), *(["--channel", channel] if channel else [])],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


def with_server(kind, workdir, plugin, body, **options):
    server = Server(kind, workdir, plugin, **options)
    try:
        return body(server)
    finally:
        server.stop()


def connect_rate(kind, workdir, plugin, *args):
    """A connect run, with the server's CPU use over it."""
    def body(server):
        cpu0, wall0 = server.cpu_seconds(), time.monotonic()
        result = load("connect", "--port", server.port, *args)
        result["server_cpu_percent"] = (server.cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
        return result
    return with_server(kind, workdir, plugin, body)


def handler_cost(workdir, plugin, quick, isolated=False):
    """Server CPU per relayed message at a fixed publish rate, measured from /proc (with the
    plugin runner's in isolated mode)."""
    def body(server):
        cpu0 = server.cpu_seconds()
        result = load("channels", "--port", server.port, "--clients", 1000, "--group", 10, "--rate", 5,
                      "--duration", 3 if quick else 8)
        cpu = server.cpu_seconds() - cpu0
        result["server_cpu_us_per_publish"] = cpu / max(1, result["sent"]) * 1e6
        return result
    return with_server("sio", workdir, plugin, body, isolated=isolated)


def most_events(workdir, plugin, quick, duration, isolated):
    """The most events the relay handles: 1,000 clients in channels of 10 asking for rising
    rates. Past its most a server falls behind and handles fewer (its backlog costs it), so
    the figure is the best step of the sweep, events handled per second (deliveries / 9)."""
    steps = []
    for rate in ([50, 100] if quick else [50, 100, 150, 200, 250]):
        result = with_server("sio", workdir, plugin, lambda s: load(
            "channels", "--port", s.port, "--clients", 1000, "--group", 10, "--rate", rate, "--duration", duration),
            isolated=isolated)
        steps.append({"asked_per_s": 1000 * rate, "handled_per_s": result["deliveries_per_s"] / 9,
                      "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"]})
    best = max(steps, key=lambda step: step["handled_per_s"])
    return {**best, "steps": steps}


def isolation(workdir, relay_c, relay_swift, quick, duration):
    """In-process and isolated plugins side by side (docs/operations.md, "Isolated plugins")."""
    out = {}
    for mode, isolated in (("in-process", False), ("isolated", True)):
        out[mode] = {
            "C relay": handler_cost(workdir, relay_c, quick, isolated=isolated),
            "Swift relay": handler_cost(workdir, relay_swift, quick, isolated=isolated),
            "most_events": most_events(workdir, relay_c, quick, duration, isolated),
            "fanout": with_server("sio", workdir, relay_c, lambda s: load(
                "fanout", "--port", s.port, "--subscribers", 100 if quick else 1000, "--size", 32, "--duration", duration),
                isolated=isolated),
        }
    return out


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
        # 10,000 deliveries/s whatever the subscriber count, for both servers; then sio alone at
        # 100,000 deliveries/s to 1,000 subscribers, the latency target.
        fixed = [(n, 10000 // n) for n in subscriber_counts]
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

        print("long-polling subscribers", flush=True)
        polling = 100 if quick else 1000
        results["polling"] = {
            k: [with_server(k, workdir, relay_c, lambda s, rate=rate: load(
                "fanout", "--port", s.port, "--transport", "polling", "--subscribers", polling, "--size", 32,
                "--rate", rate, "--duration", duration))
                for rate in (0, 10)]
            for k in kinds}

        print("connect rate", flush=True)
        results["connect"] = {
            "sio": connect_rate("sio", workdir, relay_c, "--count", 2000 if quick else 20000),
            "python": connect_rate("python", workdir, relay_c, "--count", 1000 if quick else 5000),
        }
        results["connect_polling"] = {
            "sio": connect_rate("sio", workdir, relay_c, "--transport", "polling", "--count", 1000 if quick else 10000),
            "python": connect_rate("python", workdir, relay_c, "--transport", "polling", "--count", 500 if quick else 2000),
        }

        print("metrics on and off", flush=True)
        import metrics_cost
        results["metrics"] = metrics_cost.compare(workdir, relay_c, rounds=3 if quick else 5,
                                                  subscribers=100 if quick else 1000, duration=duration)

        print("handler cost", flush=True)
        results["handler"] = {
            "C relay": handler_cost(workdir, relay_c, quick),
            "Swift relay": handler_cost(workdir, relay_swift, quick),
            "C no-op": handler_cost(workdir, noop_c, quick),
        }

        print("isolated plugins", flush=True)
        results["isolation"] = isolation(workdir, relay_c, relay_swift, quick, duration)

    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=1))
    write_report(results)
    print("wrote docs/benchmarks.md")


def loss(result):
    return f"{result['expected'] - result['received']}/{result['expected']}"


def ratio(ours, theirs, lower_is_better=False):
    if not theirs or not ours:
        return "–"
    value = theirs / ours if lower_is_better else ours / theirs
    return f"{value:.1f}×"


def scenario_ratios(results):
    """(scenario, how many times better sio did) for every scenario run against both servers."""
    per = lambda a, b: a / max(1e-9, b)
    out = [(f"fan-out {r['subscribers']} × {r['size']} B", per(r["deliveries_per_s"], t["deliveries_per_s"]))
           for r, t in zip(results["fanout_max"]["sio"], results["fanout_max"]["python"])]
    out += [(f"p99 {r['subscribers']} × {r['size']} B at {r['rate']} msgs/s", per(t["p99_ms"], r["p99_ms"]))
            for r, t in zip(results["fanout_fixed"]["sio"], results["fanout_fixed"]["python"])]
    out += [(f"idle memory at {r['connections']}", per(t["kib_per_connection"], r["kib_per_connection"]))
            for r, t in zip(results["idle"]["sio"], results["idle"]["python"])]
    out.append(("many channels", per(results["channels"]["sio"]["deliveries_per_s"], results["channels"]["python"]["deliveries_per_s"])))
    out.append(("connect (WebSocket)", per(results["connect"]["sio"]["handshakes_per_s"], results["connect"]["python"]["handshakes_per_s"])))
    if "polling" in results:
        sio, python = results["polling"]["sio"], results["polling"]["python"]
        out.append(("long-polling deliveries", per(sio[0]["deliveries_per_s"], python[0]["deliveries_per_s"])))
        out.append(("long-polling p99", per(python[1]["p99_ms"], sio[1]["p99_ms"])))
        out.append(("connect (polling → WebSocket)", per(results["connect_polling"]["sio"]["handshakes_per_s"],
                                                        results["connect_polling"]["python"]["handshakes_per_s"])))
    return out


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
    w(f"- {v['swift']}; sio release build, one event-loop thread, the C relay plugin (`Plugins/relay-c`), message log off, admin endpoint and metrics on (as `sio serve` runs by default)")
    w(f"- Python {v['python']}, python-socketio {v['python-socketio']} (engineio {v['python-engineio']}), aiohttp {v['aiohttp']}, uvloop {v['uvloop']}: `benchmarks/reference/app.py`")
    w("")
    w("## Method\n")
    w("Each server runs alone, pinned to CPU 0 (`taskset`); the load generator `sio-load` (SwiftNIO, one event loop, Engine.IO v4 / "
      "Socket.IO v5 over WebSocket or HTTP long-polling, spoken by hand, with the channel contract) is pinned to CPU 1 and reports its own CPU use: near 100 % means the "
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
    w(f"| ≥ 20,000 handshakes/s | {connect['handshakes_per_s']:,.0f} (server CPU {connect.get('server_cpu_percent', 0):.0f} %, "
      f"generator CPU {connect['generator_cpu_percent']:.0f} %) | {met(connect['handshakes_per_s'] >= 20000)} |")
    below = [f"{name} {value:.1f}×" for name, value in scenario_ratios(results) if value < 20]
    w(f"| every scenario ≥ 20× python-socketio | "
      f"{'below 20×: ' + ', '.join(below) if below else 'every ratio at least 20×'} | {met(not below)} |")
    w("")

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
        w(f"| {ours['subscribers']} | {ours['size']} B | {ours['deliveries_per_s']:,.0f} | {theirs['deliveries_per_s']:,.0f} | "
          f"{ratio(ours['deliveries_per_s'], theirs['deliveries_per_s'])} | {loss(ours)} | {loss(theirs)} | {ours['generator_cpu_percent']:.0f} % |")
    w("")

    w("## Fan-out at a fixed rate: latency\n")
    w("Each row publishes at the rate that makes 10,000 deliveries/s.\n")
    w("| subscribers | msgs/s | size | sio p50 / p99 / max ms | python p50 / p99 / max ms | p99 ratio | sio loss | python loss |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for ours, theirs in zip(results["fanout_fixed"]["sio"], results["fanout_fixed"]["python"]):
        lat = lambda r: f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.1f}"
        w(f"| {ours['subscribers']} | {ours['rate']} | {ours['size']} B | {lat(ours)} | {lat(theirs)} | "
          f"{ratio(ours['p99_ms'], theirs['p99_ms'], True)} | {loss(ours)} | {loss(theirs)} |")
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

    w("## Long-polling subscribers\n")
    w("One WebSocket publisher, subscribers on HTTP long-polling only (each keeps one GET pending; POSTs on a second "
      "connection). Rate 0 is the maximum sustained rate.\n")
    w("| server | subscribers | msgs/s | deliveries/s | expected / received | p50 / p99 / max ms | generator CPU |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("sio", "python"):
        for r in results["polling"][kind]:
            w(f"| {kind} | {r['subscribers']} ({r['ready']} connected) | {r['rate'] or 'max'} | {r['deliveries_per_s']:,.0f} | "
              f"{r['expected']} / {r['received']} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} / {r['max_ms']:.1f} | "
              f"{r['generator_cpu_percent']:.0f} % |")
    ours, theirs = results["polling"]["sio"][0], results["polling"]["python"][0]
    w(f"\nRatio of deliveries/s at the maximum rate: {ratio(ours['deliveries_per_s'], theirs['deliveries_per_s'])}; "
      f"p99 at 10 messages/s: {ratio(results['polling']['sio'][1]['p99_ms'], results['polling']['python'][1]['p99_ms'], True)}.\n")

    w("## Connect rate\n")
    w("WebSocket: upgrade request, Engine.IO open, Socket.IO CONNECT answered, close. Polling then upgrade: handshake GET, "
      "CONNECT by POST, its answer by GET, then the WebSocket upgrade (`2probe`, `3probe`, `5`), close.\n")
    w("| transport | server | connections | handshakes/s | failed | server CPU | generator CPU |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for key, name in (("connect", "WebSocket"), ("connect_polling", "polling → WebSocket")):
        for kind, r in results[key].items():
            w(f"| {name} | {kind} | {r['count']} | {r['handshakes_per_s']:,.0f} | {r['failed']} | "
              f"{r.get('server_cpu_percent', 0):.0f} % | {r['generator_cpu_percent']:.0f} % |")
    w(f"\nRatios: WebSocket {ratio(results['connect']['sio']['handshakes_per_s'], results['connect']['python']['handshakes_per_s'])}, "
      f"polling then upgrade {ratio(results['connect_polling']['sio']['handshakes_per_s'], results['connect_polling']['python']['handshakes_per_s'])}.\n")

    w("## Handler cost\n")
    w("1,000 clients in channels of 10, each publishing 5 messages/s; server CPU time per published message.\n")
    w("| handler | server CPU µs / message | deliveries/s |")
    w("| --- | --- | --- |")
    for name, r in results["handler"].items():
        w(f"| {name} | {r['server_cpu_us_per_publish']:.1f} | {r['deliveries_per_s']:,.0f} |")
    w("")

    if "metrics" in results:
        m = results["metrics"]
        w("## Metrics on and off\n")
        w(f"Fan-out 1 → {m['subscribers']:,} (32 B, maximum rate), with metrics on and `/metrics` scraped every second, and with "
          f"`--no-metrics`: {m['rounds']} alternating rounds each, medians (`benchmarks/metrics_cost.py`).\n")
        w("| metrics | deliveries/s | every round |")
        w("| --- | --- | --- |")
        w(f"| on, scraped every second | {m['on']:,.0f} | {', '.join(f'{x:,.0f}' for x in m['every_on'])} |")
        w(f"| off | {m['off']:,.0f} | {', '.join(f'{x:,.0f}' for x in m['every_off'])} |")
        w(f"\nOn / off: {m['ratio']:.3f} (the target: within 3 %, at least 0.97).\n")

    if "isolation" in results:
        inp, iso = results["isolation"]["in-process"], results["isolation"]["isolated"]
        w("## Isolated plugins\n")
        w("`sio serve --isolate-plugins` runs each plugin in a runner process of its own; the CPU below is the server's and "
          "the runner's together (both pinned to CPU 0). Handler cost as above (5 messages/s per client); \"most events\": "
          "1,000 clients in channels of 10 asking for rising rates, the best events handled per second of the sweep "
          "(each event is delivered to the 9 others of its channel); fan-out: one publisher to "
          f"{inp['fanout']['subscribers']:,} subscribers at the maximum rate (the server fans out, not the runner).\n")
        w("| scenario | in-process | isolated | isolated / in-process |")
        w("| --- | --- | --- | --- |")
        for name in ("C relay", "Swift relay"):
            a, b = inp[name]["server_cpu_us_per_publish"], iso[name]["server_cpu_us_per_publish"]
            w(f"| CPU per relayed message, {name} (µs) | {a:.1f} | {b:.1f} | {b / max(a, 1e-9):.2f} |")
        for name in ("C relay", "Swift relay"):
            a, b = inp[name], iso[name]
            w(f"| p50 / p99 latency at 5 messages/s, {name} (ms) | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
              f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | |")
        a, b = inp["most_events"], iso["most_events"]
        w(f"| most events handled per second | {a['handled_per_s']:,.0f} (asked {a['asked_per_s']:,}) | "
          f"{b['handled_per_s']:,.0f} (asked {b['asked_per_s']:,}) | {b['handled_per_s'] / max(a['handled_per_s'], 1e-9):.2f} |")
        w(f"| p50 / p99 latency there (ms) | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} | {b['p50_ms']:.1f} / {b['p99_ms']:.1f} | |")
        a, b = inp["fanout"], iso["fanout"]
        w(f"| fan-out 1 → {a['subscribers']:,} (deliveries/s) | {a['deliveries_per_s']:,.0f} | {b['deliveries_per_s']:,.0f} | "
          f"{b['deliveries_per_s'] / max(a['deliveries_per_s'], 1e-9):.2f} |")
        w("\nThe sweep behind \"most events\" (events asked for per second: handled per second, p50 latency):\n")
        for mode, r in (("in-process", inp["most_events"]), ("isolated", iso["most_events"])):
            steps = "; ".join(f"{s['asked_per_s']:,}: {s['handled_per_s']:,.0f}, {s['p50_ms'] or 0:.0f} ms" for s in r["steps"])
            w(f"- {mode}: {steps}")
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
