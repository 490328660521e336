#!/usr/bin/env python3
"""Two builds of sio on the per-message paths, in one invocation: fan-out (1 publisher to 10,
100 and 1,000 subscribers, 32 B, as fast as the generator goes) and server CPU per relayed
message (many channels at a fixed rate). Rounds alternate between the builds; the median of
each is printed with the candidate's ratio to the baseline. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/ab.py --baseline OTHER_CHECKOUT/.build/release [--rounds 3]

The candidate is this checkout's `.build/release` (benchmarks/run builds it). Servers run pinned
to CPU 0, the generator to CPU 1, as in benchmarks/run.
"""
import argparse
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402


def measure(binary, workdir, plugin, scenario):
    run.RELEASE = binary.parent  # Server starts RELEASE/sio
    if scenario == "cpu":
        return run.handler_cost(workdir, plugin, quick=False)["server_cpu_us_per_publish"]
    if scenario == "idle":
        # RSS per idle WebSocket connection at 19,000 (the generator's sio-load must sit beside
        # each build's sio: run.idle_rss starts it from there).
        return run.idle_rss("sio", workdir, plugin, 19000)["kib_per_connection"]
    if scenario == "fixed":
        # Server CPU per delivery at a fixed 800,000 deliveries/s (1 → 100): steadier than the
        # maximum rate, which moves ±15 % between identical runs on a busy machine.
        def body(server):
            cpu = server.cpu_seconds()
            result = run.load("fanout", "--port", server.port, "--subscribers", 100, "--size", 32, "--rate", 8000, "--duration", 4)
            return (server.cpu_seconds() - cpu) / max(1, result["received"]) * 1e9
        return run.with_server("sio", workdir, plugin, body)
    subscribers = int(scenario)
    return run.with_server("sio", workdir, plugin, lambda s: run.load(
        "fanout", "--port", s.port, "--subscribers", subscribers, "--size", 32, "--duration", 4))["deliveries_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", required=True, type=pathlib.Path, help="a release build directory holding sio")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--candidate", type=pathlib.Path, default=run.RELEASE, help="a release build directory (default: this checkout's)")
    parser.add_argument("--scenarios", default="10,100,1000,cpu,fixed",
                        help="comma-separated: subscriber counts (maximum rate), cpu, fixed, idle")
    args = parser.parse_args()
    candidate = args.candidate / "sio"
    loader = run.RELEASE / "sio-load"
    builds = {"baseline": args.baseline / "sio", "candidate": candidate}
    # Both servers face the same generator, this checkout's sio-load.
    generate = run.load

    def load(*arguments, timeout=600):
        release, run.RELEASE = run.RELEASE, loader.parent
        try:
            return generate(*arguments, timeout=timeout)
        finally:
            run.RELEASE = release
    run.load = load
    scenarios = args.scenarios.split(",")
    figures = {(b, s): [] for b in builds for s in scenarios}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        plugin = workdir / "relay.so"
        sys.path.insert(0, str(run.ROOT / "Tests" / "interop"))
        from plugins import build_c  # noqa: E402
        build_c(run.ROOT / "Plugins" / "relay-c" / "relay.c", plugin, optimize="-O2")
        for index in range(args.rounds):
            for scenario in scenarios:
                for name in (("baseline", "candidate") if index % 2 == 0 else ("candidate", "baseline")):
                    figures[(name, scenario)].append(measure(builds[name], workdir, plugin, scenario))
    print(f"\n{args.rounds} rounds, medians; ratio = candidate / baseline\n")
    print("| scenario | baseline | candidate | ratio |")
    print("| --- | --- | --- | --- |")
    for scenario in scenarios:
        base = statistics.median(figures[("baseline", scenario)])
        cand = statistics.median(figures[("candidate", scenario)])
        label = {"cpu": "server CPU per relayed message, µs (lower is better)",
                 "idle": "RSS per idle WebSocket connection at 19,000, KiB (lower is better)",
                 "fixed": "server CPU per delivery at 800k deliveries/s, ns (lower is better)"}.get(
            scenario, f"fan-out 1 → {scenario}, deliveries/s")
        print(f"| {label} | {base:,.1f} | {cand:,.1f} | {cand / base:.3f} |")
    print("\nevery round:", {f"{b} {s}": [round(x, 1) for x in v] for (b, s), v in figures.items()})


if __name__ == "__main__":
    main()
