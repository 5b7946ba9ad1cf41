"""A real headless Chromium (Debian's `chromium` package) driven over the DevTools protocol, for the UI tests.

Nothing is downloaded: the browser is the system's, the protocol goes over one websocket (`websockets`).
The browser is started with background networking off and every host name except 127.0.0.1 mapped to
"not found", so it sends no traffic anywhere else; each page records every request it makes
(`Network.requestWillBeSent`), so a test can assert that nothing left the machine.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-extensions",
    "--disable-default-apps", "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("CONTACTS_TEST_ARTIFACTS", REPO / "test-artifacts"))


def chromium_or_skip() -> str:
    """The Chromium binary; without it, skip with the reason (fail in CI, where `make test` installs it)."""
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    message = "Chromium not installed (apt-get install -y chromium, or `make browser`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Page:
    """One browser tab on a flat DevTools session: commands, JavaScript, keys, screenshots, its request log."""

    def __init__(self, browser: Browser, session_id: str):
        self.browser, self.session_id = browser, session_id
        self.requests: list[str] = []
        self.console_errors: list[str] = []  # script errors (an HTTP error status is not one)

    def send(self, method: str, **params):
        return self.browser.send(method, params, session_id=self.session_id)

    def on_event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error" and params["entry"].get("source") != "network":
            self.console_errors.append(params["entry"].get("text", ""))

    def evaluate(self, expression: str, await_promise: bool = True):
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=await_promise, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"JavaScript error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression!r}")
            time.sleep(0.05)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)

    def type_text(self, text: str) -> None:
        """Type into the focused element, as a keyboard would insert it."""
        self.send("Input.insertText", text=text)

    def press(self, key: str, code: str | None = None, key_code: int = 0) -> None:
        """Press and release one key (Enter, Tab, ArrowRight...) on the focused element."""
        params = {"key": key, "code": code or key, "windowsVirtualKeyCode": key_code}
        text = {"Enter": "\r", " ": " "}.get(key)
        self.send("Input.dispatchKeyEvent", type="keyDown", **params, **({"text": text} if text else {}))
        self.send("Input.dispatchKeyEvent", type="keyUp", **params)

    def screenshot(self, name: str) -> Path:
        """A full-page PNG in the test artifacts folder."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        return path


class Browser:
    """Headless Chromium with a fresh profile; `page()` opens a tab with its network log on."""

    def __init__(self, binary: str):
        from websockets.sync.client import connect

        self.profile = Path(tempfile.mkdtemp(prefix="contacts-chromium-"))
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        port_file, deadline = self.profile / "DevToolsActivePort", time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=10)
        self.ids = itertools.count(1)
        self.pages: dict[str, Page] = {}

    def send(self, method: str, params: dict | None = None, session_id: str | None = None, timeout: float = 30.0):
        """Send one command and wait for its answer, routing events to their pages meanwhile."""
        command_id = next(self.ids)
        message = {"id": command_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == command_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if reply.get("sessionId") in self.pages:
                self.pages[reply["sessionId"]].on_event(reply)

    def page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = self.pages[session_id] = Page(self, session_id)
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.send(f"{domain}.enable")
        return page

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, 15)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, 9)
                    self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


@contextmanager
def chromium():
    """A started browser, closed (and its profile removed) afterwards."""
    browser = Browser(chromium_or_skip())
    try:
        yield browser
    finally:
        browser.close()
