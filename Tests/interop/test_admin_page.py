"""The live admin page (issue 16) in headless Chromium, against a real server with real clients:
its counts follow clients connecting and subscribing, and its reload, broadcast and disconnect
actions work. SIO_ADMIN_SCREENSHOT=PATH saves the screenshot for docs/."""
import os
import shutil
import threading

import socketio

from conftest import ROOT, wait_until
from plugins import build_c, plugin_dir
from test_browser_client import browser  # noqa: F401  (fixture)

TOKEN = "page-test-token"


def connect(server, channels, transport="websocket"):
    client = socketio.Client(reconnection=False)
    received = []
    done = threading.Event()
    client.on("message", lambda data: received.append(data))
    client.on("disconnect", lambda *reason: done.set())
    client.connect(server.url, transports=[transport], wait_timeout=5)
    for channel in channels:
        assert client.call("__subscribe__", channel, timeout=5) is True
    return client, received, done


def text(page, selector):
    return page.locator(selector).inner_text()


def test_admin_page_follows_clients_and_acts(browser, start_server, tmp_path):  # noqa: F811
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory),
                                  "--admin-token", TOKEN, "--no-watch"])
    admin = f"http://127.0.0.1:{server.admin_port}"
    # Playwright's waits evaluate strings, which the page's Content-Security-Policy forbids: bypassed
    # here, and the header checked on its own below.
    page = browser.new_page(viewport={"width": 1280, "height": 1100}, bypass_csp=True)
    clients = []
    try:
        response = page.goto(admin + "/")
        assert response.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
        # A navigation carries no token: the page asks for it, and shows nothing before.
        page.wait_for_selector("#login:not(.hidden)")
        assert page.locator("#dashboard").is_hidden()
        page.fill("#token", TOKEN)
        page.click("#login button")
        page.wait_for_selector("#status.live")
        assert text(page, "#c-sockets") == "0"
        assert "relay-c" in text(page, "#plugins") and "loaded" in text(page, "#plugins")

        first = connect(server, ["room"])
        second = connect(server, ["room", "lobby"], transport="polling")
        clients += [first, second]
        page.wait_for_function("document.getElementById('c-sockets').textContent === '2'")
        page.wait_for_function("document.getElementById('c-channels').textContent === '2'")
        row = page.locator("#channels tbody tr", has_text="room")
        assert row.locator("td.num").inner_text() == "2"
        assert first[0].get_sid() in text(page, "#sockets") and "polling" in text(page, "#sockets")

        third = connect(server, ["room"])
        clients.append(third)
        page.wait_for_function("document.getElementById('c-sockets').textContent === '3'")
        page.wait_for_function(
            "[...document.querySelectorAll('#channels tbody tr')].some(r => r.textContent.includes('room') && r.querySelector('td.num').textContent === '3')")

        # Traffic through the relay shows as deliveries per second.
        for n in range(20):
            first[0].emit("message", {"ch": "room", "n": n})
        assert wait_until(lambda: len(third[1]) == 20)
        page.wait_for_function("document.getElementById('c-deliveries').textContent !== '–'")

        # Broadcast to a channel from the page.
        page.locator("#channels tbody tr", has_text="lobby").locator("button").click()
        assert page.input_value("#b-channel") == "lobby"
        page.fill("#b-message", '{"text": "from the admin page"}')
        page.click("#broadcast button")
        page.wait_for_function("document.getElementById('b-result').textContent === 'delivered to 1'")
        assert wait_until(lambda: {"text": "from the admin page"} in second[1])
        assert {"text": "from the admin page"} not in first[1]

        # Reload picks up a new plugin file.
        build_c(ROOT / "Plugins" / "echo-c" / "echo.c", directory / "echo.so")
        page.click("#reload")
        page.wait_for_function("document.getElementById('reload-result').textContent.includes('echo.so: loaded')")
        page.wait_for_function("document.getElementById('plugins').textContent.includes('echo-c')")

        # Disconnect one socket from its row.
        victim = third[0].get_sid()
        page.locator("#sockets tbody tr", has_text=victim).locator("button").click()
        assert third[2].wait(5), "the client was not disconnected"
        page.wait_for_function("document.getElementById('c-sockets').textContent === '2'")
        assert victim not in text(page, "#sockets")

        # Some traffic for the chart, then the picture.
        for n in range(30):
            for _ in range(20):
                first[0].emit("message", {"ch": "room", "n": n})
            page.wait_for_timeout(100)
        shot = os.environ.get("SIO_ADMIN_SCREENSHOT") or str(tmp_path / "admin.png")
        page.screenshot(path=shot, full_page=True)
    finally:
        page.close()
        for client, _, _ in clients:
            if client.connected:
                client.disconnect()


def test_admin_page_shows_problems_and_survives_hostile_names(browser, start_server, tmp_path):  # noqa: F811
    """Channel names and log lines come from clients: the page shows them as text."""
    directory = plugin_dir(tmp_path)
    build_c(ROOT / "Plugins" / "relay-c" / "relay.c", directory / "relay.so")
    server = start_server("sio", ["serve", "--port", "0", "--admin-port", "0", "--plugins", str(directory), "--no-watch"])
    # Without the page's CSP, so that the escaping alone is what keeps markup out.
    page = browser.new_page(bypass_csp=True)
    client = socketio.Client(reconnection=False)
    try:
        hostile = '<img src=x onerror="window.pwned=1">'
        client.connect(server.url, transports=["websocket"], wait_timeout=5)
        assert client.call("__subscribe__", hostile, timeout=5) is True
        # A refused plugin file is a problem the page lists.
        (directory / "broken.so").write_bytes(b"not an ELF file")
        os.chmod(directory / "broken.so", 0o755)
        page.goto(f"http://127.0.0.1:{server.admin_port}/")
        page.wait_for_selector("#status.live")
        page.click("#reload")
        page.wait_for_function("document.getElementById('errors').textContent.includes('plugin refused')")
        page.wait_for_function("document.getElementById('plugins').textContent.includes('not loaded')")
        assert hostile in text(page, "#channels")
        assert page.evaluate("window.pwned") is None
        assert page.locator("#channels img").count() == 0
    finally:
        page.close()
        client.disconnect()
        shutil.rmtree(directory, ignore_errors=True)
