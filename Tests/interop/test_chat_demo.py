"""The chat demo in headless Chromium with the official client, against the C and the Swift
chat plugins; and the seed's client snippet, unchanged, receiving a channel broadcast."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import BUILD_DIR, ROOT, wait_until
from plugins import build_c, plugin_dir, swift_plugin
from test_browser_client import browser  # noqa: F401  (fixture)

WEB = ROOT / "Plugins" / "chat-web"
# The README's picture is refreshed only on request (SIO_UPDATE_SCREENSHOT=1): the suite leaves the
# checkout as it found it.
SCREENSHOT = ROOT / "docs" / "chat-demo.png"


@pytest.fixture(params=["c", "swift", "c-isolated", "swift-isolated"])
def chat_server(request, start_server, tmp_path):
    directory = plugin_dir(tmp_path)
    kind, _, isolated = request.param.partition("-")
    if kind == "c":
        build_c(ROOT / "Plugins" / "chat-c" / "chat.c", directory / "chat.so")
    else:
        swift_plugin("ChatSwiftPlugin", directory / "chat.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--static", str(WEB)] + (["--isolate-plugins"] if isolated else []))
    server.kind = kind
    return server


def texts(page, selector):
    return page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.textContent)")


def join(page, name):
    page.fill("#name", name)
    page.click("#name-form button")


def test_chat_rooms(browser, chat_server):  # noqa: F811
    context = browser.new_context(viewport={"width": 900, "height": 640})
    ada, bob, cy = context.new_page(), context.new_page(), context.new_page()
    try:
        # The rooms page lists the Lobby and creates a room.
        ada.goto(chat_server.url + "/")
        ada.wait_for_selector("a.room-link")
        assert texts(ada, "a.room-link") == ["Lobby"]
        ada.fill("#room-name", "Alpha <i>team</i>")
        ada.click("#create button")
        ada.wait_for_url("**/room.html?id=*")
        alpha = ada.url.split("id=")[1]
        ada.wait_for_function("document.getElementById('room-title').textContent === 'Alpha team'")

        bob.goto(f"{chat_server.url}/room.html?id={alpha}")
        cy.goto(f"{chat_server.url}/room.html?id=1")
        join(ada, "ada")
        ada.wait_for_selector("#chat:not(.hidden)")
        assert texts(ada, "#users li") == ["ada"]

        # A name in use in the room is refused.
        join(bob, "ada")
        bob.wait_for_function("document.getElementById('name-error').textContent.includes('in use')")
        join(bob, "bob")
        bob.wait_for_selector("#chat:not(.hidden)")
        assert sorted(texts(bob, "#users li")) == ["ada", "bob"]
        ada.wait_for_function("document.querySelectorAll('#users li').length === 2")
        assert "bob joined" in texts(ada, "#messages li")

        # The same name is fine in another room.
        join(cy, "ada")
        cy.wait_for_selector("#chat:not(.hidden)")

        # Messages reach exactly the pages of the same room, with name and time, HTML stripped.
        ada.fill("#message", "hello <b>world</b><script>alert(1)</script>")
        ada.click("#message-form button")
        for page in (ada, bob):
            page.wait_for_selector("#messages li.said")
            said = page.eval_on_selector("#messages li.said", "li => [...li.children].map(c => c.textContent)")
            assert said[1:] == ["ada", "hello worldalert(1)"]
            assert len(said[0]) == 8 and said[0][2] == ":"  # HH:MM:SS
        time.sleep(0.3)
        assert cy.query_selector_all("#messages li.said") == []

        # The rooms page counts who is where.
        lobby = context.new_page()
        lobby.goto(chat_server.url + "/")
        lobby.wait_for_selector("a.room-link >> text=Alpha team")
        counts = dict(zip(texts(lobby, "a.room-link"), texts(lobby, ".count")))
        assert counts == {"Lobby": "1 person", "Alpha team": "2 people"}
        lobby.close()

        if chat_server.kind == "c" and os.environ.get("SIO_UPDATE_SCREENSHOT") == "1":
            ada.screenshot(path=str(SCREENSHOT))

        # Leaving is announced to the room.
        bob.close()
        ada.wait_for_function("document.querySelectorAll('#users li').length === 1")
        assert "bob left" in texts(ada, "#messages li")
        assert texts(ada, "#users li") == ["ada"]
    finally:
        context.close()


@pytest.mark.parametrize("language", ["c", "swift"])
def test_room_state_survives_a_reload(browser, start_server, tmp_path, language):  # noqa: F811
    directory = plugin_dir(tmp_path)
    if language == "c":
        build_c(ROOT / "Plugins" / "chat-c" / "chat.c", directory / "chat.so")
    else:
        swift_plugin("ChatSwiftPlugin", directory / "chat.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--static", str(WEB), "--no-watch"])
    context = browser.new_context()
    first = context.new_page()
    try:
        first.goto(f"{server.url}/room.html?id=1")
        join(first, "ada")
        first.wait_for_selector("#chat:not(.hidden)")
        # Reload the plugin with a new build of it (same code, other bytes: another optimisation
        # level for C; for Swift, the same library with padding after its end).
        if language == "c":
            build_c(ROOT / "Plugins" / "chat-c" / "chat.c", directory / "chat.so", optimize="-O2")
        else:
            staged = tmp_path / "chat-next.so"
            staged.write_bytes((directory / "chat.so").read_bytes() + b"\0" * 64)
            os.chmod(staged, 0o755)
            os.replace(staged, directory / "chat.so")
        result = subprocess.run([str(BUILD_DIR / "sio"), "reload", "--admin", f"127.0.0.1:{server.admin_port}"],
                                capture_output=True, text=True, timeout=10)
        assert "reloaded" in result.stdout, result
        second = context.new_page()
        second.goto(f"{server.url}/room.html?id=1")
        join(second, "ada")
        second.wait_for_function("document.getElementById('name-error').textContent.includes('in use')")
        join(second, "bea")
        second.wait_for_selector("#chat:not(.hidden)")
        assert sorted(texts(second, "#users li")) == ["ada", "bea"], "the new version knows who was there"
    finally:
        context.close()


def test_seed_snippet_receives_a_channel_broadcast(browser, start_server, tmp_path):  # noqa: F811
    static = tmp_path / "static"
    static.mkdir()
    shutil.copy(ROOT / "Tests" / "interop" / "browser" / "seed.html", static / "seed.html")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--static", str(static)])
    admin = ["--admin", f"127.0.0.1:{server.admin_port}"]
    page = browser.new_page()
    try:
        page.goto(server.url + "/seed.html")

        def broadcast(text):
            return subprocess.run([str(BUILD_DIR / "sio"), "broadcast", "--channel", "my channel", text, *admin],
                                  capture_output=True, text=True, timeout=10).returncode == 0

        assert wait_until(lambda: broadcast("hello channel"), timeout=10)
        page.wait_for_function("window.received.length === 1")
        assert page.evaluate("window.received") == ["hello channel"]
        # After a reconnect the extension subscribes again by itself.
        page.evaluate("socket.io.engine.close()")
        page.wait_for_function("window.connects === 2", timeout=15000)
        assert wait_until(lambda: broadcast("after reconnect") and page.evaluate("window.received.length") == 2, timeout=10)
        assert page.evaluate("window.received") == ["hello channel", "after reconnect"]
    finally:
        page.close()


def test_missing_client_file_says_what_to_run(start_server, tmp_path):
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--client-script", str(tmp_path / "absent.js")])
    import requests
    response = requests.get(server.url + "/socket.io/socket.io.js", timeout=5)
    assert response.status_code == 404 and "scripts/fetch-client" in response.text
    assert "scripts/fetch-client" in server.log()
