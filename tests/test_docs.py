"""The README and the documentation site as a user meets them: every `sh` example runs as
pasted, the site builds with no broken link or anchor, and no page speaks of how the service
was made.

The examples run against what `make run` serves: the demo tenant on the embedded database,
with an admin token. This test does the same (`actionlog demo`, then `actionlog serve`, as
separate processes on a fresh SQLite file), exports the `KEY` and `ADMIN` that `make run`
prints, and runs the `sh` blocks of each page in one bash of its own (a reader may land on any
page), each curl failing the run on an HTTP error: README.md first, then the pages in the order
of mkdocs.yml's nav, then any other page of docs/ in alphabetical order. The Quick start's
Python example runs too, with the key in the environment. The only change made to the text is
the port the server listens on.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ADMIN_TOKEN = "docs-admin-token-0123456789"
SH = re.compile(r"```sh\n(.*?)```", re.S)
PYTHON = re.compile(r"```python\n(.*?)```", re.S)
HISTORY = re.compile(r"\bseeds?\b|\bissue \d+", re.I)


def nav_pages(nav: list[object]) -> Iterator[str]:
    for item in nav:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for value in item.values():
                yield from nav_pages(value if isinstance(value, list) else [value])


def pages_in_order() -> list[Path]:
    """README.md, then the nav's pages, then the other pages of docs/ alphabetically."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = [ROOT / "docs" / page for page in nav_pages(config["nav"])]
    others = sorted(set((ROOT / "docs").rglob("*.md")) - set(listed))
    return [ROOT / "README.md", *listed, *others]


def quick_start(text: str) -> str:
    start = text.index("\n## Quick start")
    return text[start : text.index("\n## ", start + 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """`make run`'s setting on a free port: the port, and the environment of a reader's shell."""
    directory = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'actionlog.db'}",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "warning",
        "ARCHIVE_DIR": str(directory / "archive"),
        # the webhook examples name hooks.example.com, which a reader's machine resolves to a
        # public address; a test machine may have no DNS, so the target check is off here
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }
    # what `make run` runs: the demo loaded, then served by the same process
    server = subprocess.Popen(
        [str(BIN / "actionlog"), "demo", "--json", "--serve"],
        env={**env, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    printed = json.loads(server.stdout.readline())
    assert printed["admin_token"] == ADMIN_TOKEN
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        shell = {**env, "KEY": printed["api_key"], "ADMIN": printed["admin_token"]}
        yield port, shell
    finally:
        server.terminate()
        server.wait(timeout=30)


def on_port(text: str, port: int) -> str:
    return text.replace("127.0.0.1:8000", f"127.0.0.1:{port}")


def test_every_sh_example_runs(demo_server: tuple[int, dict[str, str]], tmp_path: Path) -> None:
    port, env = demo_server
    ran = 0
    for page in pages_in_order():
        blocks = SH.findall(page.read_text())
        if not blocks:
            continue
        script = "\n".join(
            [
                "set -euo pipefail",
                'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }',
                *blocks,
            ]
        )
        run = subprocess.run(
            ["bash", "-c", on_port(script, port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        name = page.relative_to(ROOT)
        assert run.returncode == 0, (
            f"{name}\n{run.stderr[-3000:]}\n--- stdout ---\n{run.stdout[-3000:]}"
        )
        ran += len(blocks)
    assert ran >= 25
    assert list(tmp_path.glob("action-logs-*.csv")), "the CSV export was downloaded"


def test_quick_start_python_runs_with_the_key_from_the_environment(
    demo_server: tuple[int, dict[str, str]],
) -> None:
    port, env = demo_server
    (example,) = PYTHON.findall(quick_start((ROOT / "README.md").read_text()))
    assert 'os.environ["KEY"]' in example
    run = subprocess.run(
        [sys.executable, "-c", on_port(example, port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    status, action_id = run.stdout.split()
    assert status == "201"
    stored = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/logs/actions/{action_id}",
        headers={"X-API-Key": env["KEY"]},
    )
    assert stored.json()["action_type"] == "report_export"


def test_readme_fits_on_a_screen_and_points_to_the_docs() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for page in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / page).exists(), page


def test_site_builds_with_no_broken_link_or_anchor(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_public_text_speaks_of_the_service(demo_server: tuple[int, dict[str, str]]) -> None:
    port, _ = demo_server
    texts = {str(page.relative_to(ROOT)): page.read_text() for page in pages_in_order()}
    for template in (ROOT / "app" / "console" / "templates").glob("*.html"):
        texts[str(template.relative_to(ROOT))] = template.read_text()
    spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
    public = [spec["info"].get("description", ""), *(t["name"] for t in spec.get("tags", []))]
    for operations in spec["paths"].values():
        for operation in operations.values():
            public += [*operation.get("tags", []), operation.get("summary", "")]
            public.append(operation.get("description", ""))
    texts["openapi.json"] = "\n".join(public)
    found = {name: HISTORY.findall(text) for name, text in texts.items()}
    assert not {name: words for name, words in found.items() if words}
