"""The README's C handler is complete and compilable, and does what the README says."""
import re

import socketio

from conftest import ROOT, wait_until
from plugins import build_c, plugin_dir


def test_readme_c_example(start_server, tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Writing a handler in C", 1)[1]
    source = re.search(r"```c\n(.*?)```", section, re.S).group(1)
    (tmp_path / "hello.c").write_text(source)
    directory = plugin_dir(tmp_path)
    build_c(tmp_path / "hello.c", directory / "hello.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory)])
    a = socketio.Client(reconnection=False)
    b = socketio.Client(reconnection=False)
    received = {"a": [], "b": []}
    a.on("message", lambda m: received["a"].append(m))
    b.on("message", lambda m: received["b"].append(m))
    for c in (a, b):
        c.connect(server.url, transports=["websocket"], wait_timeout=5)
    assert a.call("__subscribe__", "room-1", timeout=5) is True
    assert b.call("__subscribe__", "room-1", timeout=5) is True
    a.send({"echo": True})
    assert wait_until(lambda: received["a"] == ["welcome to the room", "someone joined", {"echo": True}])
    assert received["b"] == ["welcome to the room"]
    a.disconnect()
    b.disconnect()
