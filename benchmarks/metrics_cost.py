#!/usr/bin/env python3
"""What metrics cost on the per-delivery path: fan-out 1 → 1,000 (32 B, as fast as the
generator goes) with metrics on, scraped once a second as Prometheus would, and with
`--no-metrics`, in alternating rounds of one invocation. Prints figures; asserts nothing.

    .venv-bench/bin/python benchmarks/metrics_cost.py [--rounds 5]

Also run by benchmarks/run, whose report carries the figures.
"""
import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402


def fanout(workdir, plugin, metrics, subscribers, duration):
    def body(server):
        stop = threading.Event()
        scrapes = []

        def scrape():
            while not stop.wait(1.0):
                with urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/metrics", timeout=5) as reply:
                    scrapes.append(len(reply.read()))
        scraper = threading.Thread(target=scrape, daemon=True)
        if metrics:
            scraper.start()
        try:
            result = run.load("fanout", "--port", server.port, "--subscribers", subscribers, "--size", 32, "--duration", duration)
        finally:
            stop.set()
        if metrics:
            scraper.join()
            result["scrapes"] = len(scrapes)
        return result
    return run.with_server("sio", workdir, plugin, body, metrics=metrics)


def compare(workdir, plugin, rounds=5, subscribers=1000, duration=4):
    """Medians of deliveries/s with metrics on and off, and every round."""
    figures = {True: [], False: []}
    for index in range(rounds):
        for metrics in ((True, False) if index % 2 == 0 else (False, True)):
            figures[metrics].append(fanout(workdir, plugin, metrics, subscribers, duration)["deliveries_per_s"])
    on, off = statistics.median(figures[True]), statistics.median(figures[False])
    return {"subscribers": subscribers, "rounds": rounds, "on": on, "off": off, "ratio": on / off,
            "every_on": figures[True], "every_off": figures[False]}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        plugin = workdir / "relay.so"
        subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-O2", f"-I{run.ROOT / 'include'}", "-o", str(plugin),
                        str(run.ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
        result = compare(workdir, plugin, args.rounds, args.subscribers)
    print(f"\nfan-out 1 → {result['subscribers']}, {result['rounds']} rounds, medians")
    print(f"metrics on (scraped every second): {result['on']:,.0f} deliveries/s")
    print(f"metrics off (--no-metrics):        {result['off']:,.0f} deliveries/s")
    print(f"ratio on / off: {result['ratio']:.3f}")
    print("every round: on", [round(x) for x in result["every_on"]], "off", [round(x) for x in result["every_off"]])


if __name__ == "__main__":
    main()
