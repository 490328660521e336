"""`sio check-plugin FILE` (issue 15, scaffolding): what a server would make of a build, without
serving it, for good builds, builds the host refuses, and a build whose init crashes."""
import json
import os
import subprocess

import pytest

from conftest import BUILD_DIR, ROOT
from plugins import build_c, plugin_dir, swift_plugin

BROKEN = ROOT / "Tests" / "plugins" / "broken.c"


def check(path, *flags):
    result = subprocess.run([str(BUILD_DIR / "sio"), "check-plugin", str(path), *flags],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


def test_a_good_build_is_described(tmp_path):
    directory = plugin_dir(tmp_path)
    chat = build_c(ROOT / "Plugins" / "chat-c" / "chat.c", directory / "chat.so")
    status, out, err = check(chat)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("chat-c ") and "ABI 1." in lines[0] and str(chat) in lines[0]
    assert "  on_message  channel ^room-" in lines and lines[-1] == "would load"

    status, out, _ = check(chat, "--json")
    result = json.loads(out)
    assert status == 0 and result["outcome"] == "loaded" and result["name"] == "chat-c"
    assert {"event": "on_subscribe", "pattern": "^room-"} in result["handlers"]
    assert {"event": "on_message", "pattern": None} in result["handlers"]


def test_a_swift_build_is_described(tmp_path):
    directory = plugin_dir(tmp_path)
    plugin = swift_plugin("EchoSwiftPlugin", directory / "echo.so")
    status, out, err = check(plugin, "--json")
    assert status == 0, err
    assert json.loads(out)["name"] == "echo-swift"


@pytest.mark.parametrize("define, reason", [
    ("BROKEN_ABI", "ABI"),
    ("BROKEN_INIT", "init"),
    ("BROKEN_PATTERN", "does not compile"),
    ("BROKEN_CONNECT", "on_connect cannot be bound"),
    ("BROKEN_NO_ENTRY", "sio_plugin_entry"),
    ("BROKEN_NULL_NAME", "name"),
])
def test_a_refused_build_says_why(tmp_path, define, reason):
    directory = plugin_dir(tmp_path)
    plugin = build_c(BROKEN, directory / "broken.so", defines=[define], werror=False)
    status, out, _ = check(plugin)
    assert status == 1
    assert out.startswith(f"{plugin}: refused: ") and reason in out, out


def test_a_build_whose_init_crashes_is_refused_with_the_signal(tmp_path):
    directory = plugin_dir(tmp_path)
    plugin = build_c(BROKEN, directory / "broken.so", defines=["BROKEN_INIT_CRASH"], werror=False)
    status, out, _ = check(plugin, "--json")
    result = json.loads(out)
    assert status == 1
    assert result["outcome"].startswith("refused: the plugin crashed the check") and "signal 11" in result["outcome"]


def test_files_that_are_not_plugins_or_not_safe(tmp_path):
    directory = plugin_dir(tmp_path)
    text = directory / "notes.so"
    text.write_text("not an ELF file")
    os.chmod(text, 0o755)
    status, out, _ = check(text)
    assert status == 1 and "refused" in out

    truncated = directory / "truncated.so"
    whole = build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    os.chmod(truncated, 0o755)
    status, out, _ = check(truncated)
    assert status == 1 and "refused" in out

    writable = build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "writable.so")
    os.chmod(writable, 0o777)
    status, out, _ = check(writable)
    assert status == 1 and "writable by group or others" in out

    status, out, _ = check(directory / "missing.so")
    assert status == 1 and "refused" in out
