"""Debian's Chromium, headless, driven over the DevTools protocol: open a page, record every request it makes, count
elements, take a screenshot.

    seen = open_page(Path("report.html"), tmp_path / "chromium")
    seen.requested, seen.svg_count, seen.screenshot   # URLs asked for, <svg> elements, PNG bytes

Chromium must be installed (`.ci/run` installs it): without it the caller fails, never skips.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

WIDTH, HEIGHT = 1280, 1600
STARTUP_SECONDS = 30


@dataclass(frozen=True)
class PageSeen:
    requested: list[str]  # every URL the page asked for (Network.requestWillBeSent), the page's own first
    svg_count: int
    screenshot: bytes  # PNG, WIDTH x HEIGHT


class _DevTools:
    """One DevTools connection: commands answered in order, the events that came meanwhile kept."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            answer = json.loads(self.socket.recv(timeout=STARTUP_SECONDS))
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            assert "error" not in answer, f"{method}: {answer['error']}"
            return answer["result"]

    def wait_for(self, method: str) -> dict[str, Any]:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.socket.recv(timeout=STARTUP_SECONDS)))
        return next(e for e in self.events if e.get("method") == method)


def open_page(page: Path, profile: Path) -> PageSeen:
    """Open `page` (a file) in a fresh headless Chromium whose profile is the folder `profile`; what it saw."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed (apt-get install chromium; .ci/run does)"
    profile.mkdir(parents=True, exist_ok=True)
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with connect(_browser_socket(profile, browser), max_size=None, open_timeout=STARTUP_SECONDS) as socket:
            return _visit(_DevTools(socket), page)
    finally:
        browser.terminate()
        browser.wait(timeout=STARTUP_SECONDS)


def _browser_socket(profile: Path, browser: subprocess.Popen[bytes]) -> str:
    """The browser's DevTools address: Chromium writes its port (0 asked for a free one) and path to
    DevToolsActivePort in the profile once it listens."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + STARTUP_SECONDS
    while not (active.exists() and len(active.read_text().split()) == 2):
        assert browser.poll() is None, f"chromium exited with {browser.returncode} before it listened"
        assert time.monotonic() < deadline, f"chromium did not listen within {STARTUP_SECONDS} s"
        time.sleep(0.1)
    port, path = active.read_text().split()
    return f"ws://127.0.0.1:{port}{path}"


def _visit(devtools: _DevTools, page: Path) -> PageSeen:
    target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = devtools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    devtools.send("Network.enable", session=session)
    devtools.send("Page.enable", session=session)
    devtools.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session)  # fmt: skip
    devtools.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
    devtools.wait_for("Page.loadEventFired")
    count = devtools.send("Runtime.evaluate", {"expression": "document.querySelectorAll('svg').length",
                                               "returnByValue": True}, session)  # fmt: skip
    shot = devtools.send("Page.captureScreenshot", {"format": "png"}, session)
    sent = [e for e in devtools.events if e.get("method") == "Network.requestWillBeSent"]
    requested = [e["params"]["request"]["url"] for e in sent]
    return PageSeen(requested, int(count["result"]["value"]), base64.b64decode(shot["data"]))


def drawn(screenshot: bytes) -> tuple[int, float]:
    """How much a screenshot shows: its distinct colours and the share of pixels not (near) white. A blank page
    has one colour and no ink; a report page with text, bars and lines has hundreds and a few percent."""
    import matplotlib.image
    import numpy

    pixels = matplotlib.image.imread(io.BytesIO(screenshot), format="png")
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    colours = numpy.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    return len(colours), float((pixels[..., :3] < 0.9).any(axis=2).mean())
