"""`sio new-plugin NAME` (issue 15, scaffolding): the project it creates outside the server's tree
builds (C with its own Makefile, Swift with SwiftPM against the plugin SDK alone), passes
`sio check-plugin`, loads into a real server, and answers a real client."""
import json
import os
import re
import shutil
import subprocess
import threading

import socketio

from conftest import BUILD_DIR, ROOT, wait_until
from plugins import plugin_dir

SIO = str(BUILD_DIR / "sio")


def assert_greets(server, name):
    """What the template does: a welcome on connect, and an answer to "hello"."""
    client = socketio.Client(reconnection=False)
    welcomed = threading.Event()
    client.on("welcome", lambda who: welcomed.set() if who == name else None)
    client.connect(server.url, transports=["websocket"], wait_timeout=5)
    try:
        assert welcomed.wait(5)
        assert client.call("hello", timeout=5) == f"hello from {name}"
    finally:
        client.disconnect()


def test_a_new_c_plugin_builds_loads_and_answers(start_server, tmp_path):
    project = tmp_path / "elsewhere" / "greeter"
    created = subprocess.run([SIO, "new-plugin", "greeter", "--dir", str(project)], capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    assert sorted(p.name for p in project.iterdir()) == ["Makefile", "greeter.c", "include"]
    assert (project / "include" / "sio_plugin.h").read_text().startswith("/*")

    built = subprocess.run(["make", "-C", str(project)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "warning" not in built.stderr
    checked = subprocess.run(["make", "-s", "-C", str(project), "check", f"SIO={SIO}"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "greeter 0.1.0" in checked.stdout and "would load" in checked.stdout

    plugins = plugin_dir(tmp_path)
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(plugins)])
    installed = subprocess.run(["make", "-s", "-C", str(project), "install", f"PLUGINS={plugins}"], capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr
    assert oct(os.stat(plugins / "greeter.so").st_mode & 0o777) == "0o755"
    assert wait_until(lambda: "plugin loaded" in server.log() and "greeter 0.1.0" in server.log(), timeout=10), server.log()

    assert_greets(server, "greeter")


def test_names_and_places_it_refuses(tmp_path):
    for name in ["../escape", "with space", "-dash", "", "x" * 65, "ünicode"]:
        result = subprocess.run([SIO, "new-plugin", "--dir", str(tmp_path / "p"), "--", name], capture_output=True, text=True, timeout=30)
        assert result.returncode != 0 and "plugin name" in result.stderr, (name, result.stderr)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    result = subprocess.run([SIO, "new-plugin", "x", "--dir", str(occupied)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "not empty" in result.stderr
    assert (occupied / "keep.txt").read_text() == "mine"
    result = subprocess.run([SIO, "new-plugin", "x", "--lang", "cobol", "--dir", str(tmp_path / "q")], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


def test_a_new_swift_plugin_depends_on_the_sdk_alone_and_answers(start_server, tmp_path):
    """By path to this checkout's SDK: one package resolved, built, loaded, answering."""
    project = tmp_path / "greeter-swift"
    created = subprocess.run([SIO, "new-plugin", "greeter-swift", "--lang", "swift", "--dir", str(project)],
                             capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    assert '.package(path: "' in (project / "Package.swift").read_text()
    built = subprocess.run(["swift", "build"], cwd=project, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    dependencies = subprocess.run(["swift", "package", "show-dependencies", "--format", "json"], cwd=project,
                                  capture_output=True, text=True, timeout=60)
    tree = json.loads(dependencies.stdout)
    assert [d["identity"] for d in tree["dependencies"]] == ["sio-plugin-sdk"]
    assert tree["dependencies"][0]["dependencies"] == []

    plugins = plugin_dir(tmp_path)
    library = project / ".build" / "debug" / "libgreeter-swift.so"
    shutil.copy(library, plugins / "greeter.so")
    os.chmod(plugins / "greeter.so", 0o755)
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(plugins)])
    assert_greets(server, "greeter-swift")


def test_a_published_sdk_is_depended_on_by_url_and_version(tmp_path):
    """scripts/publish-sdk makes a repository of the SDK alone, tagged with the ABI version."""
    published = tmp_path / "remote" / "sio-plugin-sdk"
    result = subprocess.run([str(ROOT / "scripts" / "publish-sdk"), str(published)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    header = (ROOT / "include" / "sio_plugin.h").read_text()
    version = ".".join(re.search(rf"#define SIO_ABI_{part} (\d+)", header).group(1) for part in ("MAJOR", "MINOR")) + ".0"
    tags = subprocess.run(["git", "-C", str(published), "tag"], capture_output=True, text=True).stdout.split()
    assert tags == [version]
    wrong = subprocess.run([str(ROOT / "scripts" / "publish-sdk"), str(tmp_path / "elsewhere")], capture_output=True, text=True)
    assert wrong.returncode == 2 and "sio-plugin-sdk" in wrong.stderr

    project = tmp_path / "by-url"
    created = subprocess.run([SIO, "new-plugin", "by-url", "--lang", "swift", "--dir", str(project),
                              "--sdk-url", f"file://{published}"], capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    assert f'.package(url: "file://{published}", from: "{version}")' in (project / "Package.swift").read_text()
    built = subprocess.run(["swift", "build"], cwd=project, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    checked = subprocess.run([SIO, "check-plugin", str(project / ".build" / "debug" / "libby-url.so")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "by-url 0.1.0" in checked.stdout, checked.stdout + checked.stderr
