"""Take the README's console screenshots (docs/*.png) from the demo data.

`make screenshots`: a fresh SQLite database in a temporary folder, `actionlog demo`, then
`actionlog serve` on a free port, and Debian's Chromium driven by Playwright (the same tooling
as the browser tests) signing in with the demo key and photographing each view.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).parent
BIN = Path(sys.executable).parent
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/demo.db",
            "PORT": str(port),
            "LOG_LEVEL": "warning",
        }
        demo = subprocess.run(
            [BIN / "actionlog", "demo", "--json"], env=env, check=True, capture_output=True
        )
        key = json.loads(demo.stdout)["api_key"]
        server = subprocess.Popen([BIN / "actionlog", "serve"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            shoot(base, key)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)


def shoot(base: str, key: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=LAUNCH_ARGS)
        page = browser.new_page(base_url=base, viewport={"width": 1360, "height": 860})
        page.goto("/ui/sign-in")
        page.screenshot(path=DOCS / "console-sign-in.png")
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#action-list")
        page.screenshot(path=DOCS / "console-actions.png")
        page.goto("/ui/actions?source=ai_agent&status=failure")
        page.click("#action-list tbody tr >> nth=0 >> a.type")
        page.wait_for_selector("dl.fields")
        page.screenshot(path=DOCS / "console-action-detail.png", full_page=True)
        page.goto("/ui/failed?range=7d")
        page.screenshot(path=DOCS / "console-failed.png")
        page.goto("/ui/stats?range=7d")
        page.wait_for_selector("#chart[data-drawn=true]")
        page.screenshot(path=DOCS / "console-stats.png", full_page=True)
        page.goto("/ui/audits")
        page.click("#audit-list tbody tr >> nth=0 >> td:nth-child(4) a")
        page.wait_for_selector("article.audit-event")
        page.screenshot(path=DOCS / "console-audit-trail.png")
        page.goto("/ui/actions")
        page.click("#action-list tbody tr >> nth=0 >> a.type")
        page.click("dl.fields >> text=/-\\d{8}$/")
        page.wait_for_selector("#session-actions")
        page.screenshot(path=DOCS / "console-session.png")
        page.goto("/ui/tail")
        page.wait_for_selector("#tail-status")
        page.goto("/docs")
        page.wait_for_selector(".opblock")
        page.screenshot(path=DOCS / "docs-offline.png")
        browser.close()


if __name__ == "__main__":
    main()
