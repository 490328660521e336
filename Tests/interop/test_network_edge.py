"""The network edge (issue 12): what a server facing the internet needs to stay up. Each case
runs a real server process."""
import os
import resource
import socket
import time

import socketio

from conftest import wait_until


# Out of file descriptors, accepting pauses instead of spinning, and recovers.

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_descriptor_exhaustion_pauses_accepting_without_spinning(start_server, tmp_path):
    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    server = start_server("sio", ["serve", "--port", "0", "--no-admin", "--no-probe-plugins"], preexec_fn=few_descriptors)
    held = []
    for _ in range(120):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        held.append(s)
    assert wait_until(lambda: "accepting paused" in server.log(), timeout=5), server.log()[-2000:]
    before = cpu_seconds(server.proc.pid)
    time.sleep(2)
    used = cpu_seconds(server.proc.pid) - before
    assert used < 1.0, f"the server used {used:.2f} s of CPU in 2 s while out of descriptors"
    assert server.log().count("accepting paused") == 1, "logged once per interval"
    for s in held:
        s.close()
    c = socketio.Client(reconnection=False)
    c.connect(server.url, transports=["websocket"], wait_timeout=10)
    assert c.connected
    c.disconnect()
