#!/usr/bin/env python3
"""Where the time and the memory go, for each target of docs/benchmarks.md: perf (cpu-clock
samples) on the release server, and on the load generator where it sets the pace; heaptrack for
the memory of idle connections. Writes docs/benchmarks-profile.md, which benchmarks/run includes
in docs/benchmarks.md. Called by benchmarks/profile after the release build.

valgrind --tool=callgrind is not used: valgrind 3.19 (Debian 12) cannot read the DWARF 5 of
Swift 6 binaries and crashes on them stripped."""
import collections
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from run import DOCS, LOAD_CPU, RELEASE, ROOT, Server, cpu_seconds, raise_fd_limit  # noqa: E402


def demangle(names):
    result = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names), capture_output=True, text=True)
    lines = result.stdout.split("\n")
    return [(lines[i] if i < len(lines) else n) for i, n in enumerate(names)]


def perf_rows(data, sort, children=False, limit=20):
    """(share, name) rows of `perf report`."""
    command = ["perf", "report", "-i", str(data), "--stdio", "-g", "none", "--sort", sort,
               "--children" if children else "--no-children"]
    out = subprocess.run(command, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        match = re.match(r"^\s+([0-9.]+)%\s+(?:([0-9.]+)%\s+)?(.*)$", line)
        if match:
            rows.append((float(match.group(1)), match.group(3).strip()))
    return rows[:limit] if limit else rows


def kernel_share(data):
    rows = perf_rows(data, "dso", limit=0)
    return sum(share for share, name in rows if "kernel" in name)


# Frames every sample passes through (the event loop, NIO's read and write plumbing): left out
# of the inclusive tables, which are there to show what the work is.
GENERIC = re.compile(r"start_thread|thunk|ThreadOps|MultiThreadedEventLoopGroup|SelectableEventLoop|Selector\.|"
                     r"BaseSocketChannel\.readable|readFromSocket\(\)|fireChannelRead|invokeChannelRead|"
                     r"_ChannelInboundHandler\.channelRead|ByteToMessageHandler|decodeLoop|partial apply|"
                     r"SynchronousOperations|CallbackList|EventLoopFuture|EventLoopPromise|^0x")


def symbol_table(data, limit=15, children=False):
    rows = perf_rows(data, "dso,symbol", children=children, limit=limit * 3 if children else limit)
    parsed = []
    for share, rest in rows:
        parts = rest.split(None, 2)
        if len(parts) < 3:
            continue
        dso, _, symbol = parts
        parsed.append((share, dso, symbol.split("  ")[0].strip()))
    names = demangle([s for _, _, s in parsed])
    out = ["| share | where | symbol |", "| --- | --- | --- |"]
    seen = 0
    for (share, dso, _), name in zip(parsed, names):
        name = name[:110].replace("|", "\\|")
        if children and (dso == "[kernel.kallsyms]" or GENERIC.search(name)):
            continue
        out.append(f"| {share:.1f} % | `{dso}` | `{name}` |")
        seen += 1
        if seen >= limit:
            break
    return "\n".join(out)


def stage_table(data, stages):
    """Inclusive share of named stages: for each (label, pattern), the largest inclusive share of
    a frame whose demangled name matches."""
    rows = perf_rows(data, "symbol", children=True, limit=0)
    names = demangle([re.sub(r"^\[[.k]\]\s+", "", name).split("  ")[0].strip() for _, name in rows])
    out = ["| stage | share of the server's samples |", "| --- | --- |"]
    for label, pattern in stages:
        share = max((r[0] for r, n in zip(rows, names) if re.search(pattern, n)), default=0.0)
        out.append(f"| {label} | {share:.1f} % |")
    return "\n".join(out)


def start_load(*args):
    return subprocess.Popen(["taskset", "-c", LOAD_CPU, str(RELEASE / "sio-load"), *map(str, args)], stdout=subprocess.PIPE,
                            text=True, preexec_fn=raise_fd_limit)


def profiled(work, server, args, settle, seconds, generator=False):
    """Runs sio-load with `args`, records the server (and the generator) for `seconds`
    after `settle`; returns the load result, the perf files and both processes' CPU use."""
    load = start_load(*args)
    time.sleep(settle)
    cpu = (cpu_seconds(server.proc.pid), cpu_seconds(load.pid), time.monotonic())
    server_data, load_data = work / f"server-{time.monotonic_ns()}.data", work / f"load-{time.monotonic_ns()}.data"
    def record(pid, output):
        return subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-o", str(output), "-p", str(pid), "--", "sleep", str(seconds)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    targets = [(server.proc.pid, server_data)] + ([(load.pid, load_data)] if generator else [])
    recorders = [record(pid, output) for pid, output in targets]
    for (pid, output), recorder in zip(targets, recorders):
        recorder.communicate()
        # Here perf's first attach to a freshly started server exits at once with status 255
        # and no message; the second one records.
        if recorder.returncode != 0:
            record(pid, output).communicate()
    wall = time.monotonic() - cpu[2]
    usage = {"server_cpu_percent": (cpu_seconds(server.proc.pid) - cpu[0]) / wall * 100,
             "generator_cpu_percent": (cpu_seconds(load.pid) - cpu[1]) / wall * 100}
    result = json.loads(load.communicate(timeout=300)[0].strip().splitlines()[-1])
    return result, server_data, load_data if generator else None, usage


def heap_per_connection(work, connections):
    """heaptrack on a server holding idle connections: peak heap by allocation site."""
    output = work / "heaptrack.sio"
    plugins = work / "heap-plugins"
    plugins.mkdir()
    os.chmod(plugins, 0o755)
    subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-O2", f"-I{ROOT / 'include'}", "-o", str(plugins / "relay.so"),
                    str(ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
    os.chmod(plugins / "relay.so", 0o755)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["heaptrack", "-o", str(output), str(RELEASE / "sio"), "serve", "--port", str(port), "--no-admin",
                               "--threads", "1", "--plugins", str(plugins), "--log-level", "warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(os.environ, SOCKETIO_MESSAGE_LOG_FORMAT="none"), preexec_fn=raise_fd_limit,
                              start_new_session=True)
    time.sleep(5)
    load = subprocess.Popen([str(RELEASE / "sio-load"), "idle", "--port", str(port), "--connections", str(connections)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=raise_fd_limit)
    ready = json.loads(load.stdout.readline())["ready"]
    time.sleep(1)
    load.stdin.close()
    load.wait(60)
    os.killpg(server.pid, 2)  # heaptrack is a script: the server is its child
    server.wait(60)
    trace = next(work.glob("heaptrack.sio*"))
    flame = work / "flame.txt"
    subprocess.run(["heaptrack_print", "-f", str(trace), "--print-peaks", "0", "--print-allocators", "0", "--print-temporary", "0",
                    "--print-leaks", "0", "--print-flamegraph", str(flame), "--flamegraph-cost-type", "peak"], capture_output=True)
    # Each peak stack is charged to its innermost frame in the server's own code or NIO's.
    interesting = re.compile(r"SocketIO|SioPlugin|Engine|WebSocket|HTTP|Channel|Pending|ByteBuffer|Selector|Plugin|CArena|"
                             r"Request|Handler|Registry|Socket|Identifier|Session")
    by_site = collections.Counter()
    total = 0
    for line in flame.read_text().splitlines():
        stack, _, cost = line.rpartition(" ")
        cost = int(cost)
        total += cost
        frames = stack.split(";")
        site = next((f for f in reversed(frames) if interesting.search(f) and not f.startswith("swift_")), frames[-1])
        by_site[site] += cost
    names = list(by_site)
    pretty = dict(zip(names, demangle(names)))
    rows = [(cost / ready, re.sub(r" \(.*\)$", "", pretty[name])[:100]) for name, cost in by_site.most_common(14)]
    return ready, total / ready, rows


def main():
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        relay = work / "relay-c.so"
        subprocess.run(["cc", "-std=c11", "-shared", "-fPIC", "-O2", f"-I{ROOT / 'include'}", "-o", str(relay),
                        str(ROOT / "Plugins" / "relay-c" / "relay.c")], check=True)
        out = ["## Where the time goes\n",
               "`benchmarks/profile`: `perf record` (cpu-clock samples) of the release server, and of the load generator "
               "where it sets the pace; `heaptrack` for memory. Shares are of the samples taken in that process.\n"]

        server = Server("sio", work, relay)
        try:
            fan, data, _, usage = profiled(work, server, ["fanout", "--port", server.port, "--subscribers", 1000, "--size", 32,
                                                          "--duration", 10], settle=4, seconds=5)
            out.append(f"### Fan-out to 1,000 subscribers at the maximum rate\n")
            out.append(f"{fan['deliveries_per_s']:,.0f} deliveries/s while recorded; server CPU {usage['server_cpu_percent']:.0f} %, "
                       f"generator {usage['generator_cpu_percent']:.0f} %; kernel {kernel_share(data):.0f} % of the server's samples. "
                       "Self time by symbol:\n")
            out.append(symbol_table(data) + "\n")

            lat, data, load_data, usage = profiled(work, server, ["fanout", "--port", server.port, "--subscribers", 1000,
                                                                  "--size", 32, "--rate", 100, "--duration", 10],
                                                   settle=4, seconds=5, generator=True)
            per_delivery = usage["server_cpu_percent"] / 100 / max(1, lat["deliveries_per_s"]) * 1e6
            per_read = usage["generator_cpu_percent"] / 100 / max(1, lat["deliveries_per_s"]) * 1e6
            out.append("### The latency target: 100 messages/s to 1,000 subscribers\n")
            out.append(f"{lat['deliveries_per_s']:,.0f} deliveries/s, p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
                       f"(under perf). Messages 10 ms apart are not coalesced: every delivery is one `write` on the server "
                       f"and one read on the generator. Server CPU {usage['server_cpu_percent']:.0f} %, {per_delivery:.1f} µs "
                       f"per delivery ({kernel_share(data):.0f} % of the samples in the kernel's TCP path), so one message "
                       f"takes {per_delivery:.1f} ms of writes to reach its thousandth subscriber; the generator spends "
                       f"{per_read:.1f} µs per delivery ({kernel_share(load_data):.0f} % in the kernel), {per_read:.1f} ms "
                       f"per message of reads, which the next message's writes overlap. The last subscribers of each message "
                       f"wait for both queues: the 10 ms is spent in loopback TCP, not in the server's own code. "
                       f"Server, self time:\n")
            out.append(symbol_table(data, limit=10) + "\n")
            out.append("Generator, self time:\n")
            out.append(symbol_table(load_data, limit=10) + "\n")
        finally:
            server.stop()

        server = Server("sio", work, relay)
        try:
            con, data, load_data, usage = profiled(work, server, ["connect", "--port", server.port, "--count", 40000],
                                                   settle=2, seconds=4, generator=True)
            per = usage["server_cpu_percent"] / 100 / max(1, con["handshakes_per_s"]) * 1e6
            out.append("### Connect rate (WebSocket)\n")
            gen_per = usage["generator_cpu_percent"] / 100 / max(1, con["handshakes_per_s"]) * 1e6
            out.append(f"{con['handshakes_per_s']:,.0f} handshakes/s (under perf); server CPU {usage['server_cpu_percent']:.0f} %, "
                       f"{per:.0f} µs per handshake ({kernel_share(data):.0f} % in the kernel: accept, three reads, one writev, "
                       f"close); generator CPU {usage['generator_cpu_percent']:.0f} %, {gen_per:.0f} µs per handshake "
                       f"({kernel_share(load_data):.0f} % in the kernel). 20,000 handshakes/s would need 50 µs on each side. "
                       f"Where the server's time goes, inclusive:\n")
            out.append(stage_table(data, [
                ("accept, new channel and its HTTP handlers", r"^ServerBootstrap\.AcceptHandler\.channelRead"),
                ("HTTP request parsed and handled (llhttp, then the rows below)", r"^HTTPDecoder\.decode\(context"),
                ("— the upgrade: checks, 101, handler swap", r"^EngineHTTPHandler\.upgradeOrRoute"),
                ("— the session: ids, registration, open packet, timers", r"^WebSocketTransportHandler\.handlerAdded"),
                ("Socket.IO CONNECT and on_connect", r"^Client\.connect\(namespace"),
                ("writes: 101 and open packet in one writev, then the CONNECT answer", r"^closure #1 in FlushBatcher\.enqueue"),
                ("the client's reset: error, close, session teardown", r"fireErrorCaught"),
                ("kernel, all of it", r"^entry_SYSCALL_64_after_hwframe|^do_syscall_64"),
            ]) + "\n")
        finally:
            server.stop()

        ready, heap, rows = heap_per_connection(work, 2000)
        out.append("### Memory of an idle connection\n")
        out.append(f"`heaptrack`, {ready:,} idle WebSocket clients: {heap / 1024:.1f} KiB of heap per connection at the peak "
                   f"(RSS adds malloc's own overhead). Bytes per connection by the innermost frame of the server or NIO that "
                   f"allocated them:\n")
        out.append("| bytes / connection | allocated in |")
        out.append("| --- | --- |")
        for per, name in rows:
            out.append(f"| {per:,.0f} | `{name.replace('|', chr(92) + '|')}` |")
        out.append("")

    (DOCS / "benchmarks-profile.md").write_text("\n".join(out) + "\n")
    print("wrote docs/benchmarks-profile.md")


if __name__ == "__main__":
    main()
