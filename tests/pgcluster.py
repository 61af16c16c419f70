"""Private PostgreSQL clusters for tests that need a server of their own (a streaming replica).

Each cluster lives in a temporary directory owned by the `postgres` OS user (the server refuses
to run as root), listens on 127.0.0.1 on a free port, and is stopped and deleted by the test
that made it. The binaries are Debian's PostgreSQL 15 (`PG_BIN`).
"""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """Why private clusters cannot run here, or None when they can."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _run(*command: str) -> None:
    done = subprocess.run(_as_postgres(*command), capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")


class Cluster:
    """One PostgreSQL server in a directory of its own."""

    def __init__(self, root: Path, name: str) -> None:
        self.data = root / name
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def settings(self) -> str:
        return (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.data}'\nfsync = off\n"
        )

    def init(self) -> None:
        """A new primary: initdb's pg_hba trusts local and replication connections."""
        _run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "--no-sync")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(self.settings())

    def replicate(self, primary: "Cluster") -> None:
        """A streaming replica of `primary` (`pg_basebackup -R` writes its standby settings)."""
        _run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
             "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
             "--no-sync")  # fmt: skip
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(self.settings())

    def start(self) -> None:
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "log"),
             "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


def cluster_root() -> Path:
    """A temporary directory the `postgres` user can own (pytest's tmp_path is root's only)."""
    root = Path(tempfile.mkdtemp(prefix="actionlog-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root
