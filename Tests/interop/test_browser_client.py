"""The official JavaScript client 4.8.1, running in headless Chromium, against the server."""
import os
import pathlib
import shutil

import pytest

from conftest import ROOT

CLIENT = ROOT / ".cache" / "client" / "socket.io.min.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE = pathlib.Path(__file__).parent / "browser" / "interop.html"


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or not CLIENT.exists():
        pytest.fail("headless Chromium and the official client are needed: run .ci/run or scripts/fetch-client")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def browser_server(start_server, tmp_path):
    shutil.copy(CLIENT, tmp_path / "socket.io.min.js")
    shutil.copy(PAGE, tmp_path / "interop.html")
    return start_server(env={"SIO_STATIC": str(tmp_path)})


@pytest.mark.parametrize("transports", ["websocket", "polling", "polling,websocket"])
def test_official_client(browser, browser_server, transports):
    page = browser.new_page()
    try:
        page.goto(f"{browser_server.url}/interop.html?transports={transports}")
        page.wait_for_function("window.done === true", timeout=30_000)
        results = page.evaluate("window.results")
    finally:
        page.close()
    assert "error" not in results, results
    assert results["connected"] is True
    assert results["welcome"]["auth"] == {"token": "browser"}
    assert results["sid matches"] is True
    assert results["echo event"] == {"plain": "emit"}
    assert results["ack"] == "with ack"
    assert results["binary ack"] == [0, 1, 2, 253, 254, 255]
    assert results["server ack"] == {"answered": "from the browser"}
    assert results["namespace"] == "/admin"
    expected_transport = "polling" if transports == "polling" else "websocket"
    assert results["transport"] == expected_transport
    assert results["after upgrade"] == "still there"
    assert results["server disconnect"] == "io server disconnect"
