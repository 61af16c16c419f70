"""The README's HTTP examples run as pasted, in order, after the quick start.

The quick start is `make run`: the demo tenant on the embedded database, with an admin token.
This test does the same (`actionlog demo`, then `actionlog serve`, as separate processes on a
fresh SQLite file), exports the `KEY` and `ADMIN` that `make run` prints, and runs every `sh`
block of the README's "HTTP API" section in one bash, each curl failing the run on any HTTP
error. The only change made to the text is the port the server listens on.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_TOKEN = "readme-admin-token-0123456789"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def http_api_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## HTTP API")
    end = text.index("\n## ", start + 1)
    return BLOCK.findall(text[start:end])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_http_example_runs(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'actionlog.db'}",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "warning",
    }
    demo = subprocess.run(
        [str(BIN / "actionlog"), "demo", "--json"], env=env, capture_output=True, text=True
    )
    assert demo.returncode == 0, demo.stderr
    printed = json.loads(demo.stdout)
    assert printed["admin_token"] == ADMIN_TOKEN
    server = subprocess.Popen(
        [str(BIN / "actionlog"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        blocks = http_api_blocks()
        assert len(blocks) >= 10
        script = "\n".join(
            [
                "set -euo pipefail",
                'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }',
                *blocks,
            ]
        ).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        run = subprocess.run(
            ["bash", "-c", script],
            env={**env, "KEY": printed["api_key"], "ADMIN": printed["admin_token"]},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"{run.stderr[-3000:]}\n--- stdout ---\n{run.stdout[-3000:]}"
        assert '"valid":true' in run.stdout.replace(" ", "")  # the last example: the chain verifies
        assert list(tmp_path.glob("action-logs-*.csv")), "the CSV export was downloaded"
    finally:
        server.terminate()
        server.wait(timeout=20)
