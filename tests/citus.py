"""A private Citus cluster for tests: a coordinator and two workers from the installed extension.

Each node is a PostgreSQL 15 server of tests/pgcluster.py (its own directory and free port,
owned by the `postgres` OS user) started with `shared_preload_libraries = 'citus'`. A database
made with `create_database` exists on every node with the extension, and the coordinator knows
the workers (`citus_add_node`), so that `actionlog migrate` and `actionlog distribute` run on it
exactly as an operator runs them on a real cluster. `stop` stops every node and deletes them.

Where the extension is not installed, `available()` says how to get it: Citus 13.x supports
PostgreSQL 15; build it from the public citusdata/citus repository and `make install` it into
this PostgreSQL (its `citus.so` lands in `pg_config --pkglibdir`).
"""

import contextlib
import shutil
import subprocess
from pathlib import Path

import asyncpg

from tests import pgcluster

HOW_TO_GET_CITUS = (
    "Citus is not installed into this PostgreSQL ({library} is missing): build Citus 13.x "
    "(github.com/citusdata/citus, a release tag that supports PostgreSQL 15) with "
    "./configure && make && make install, then run `make test-citus`"
)


def library_dir() -> Path:
    """Where the PostgreSQL of `PG_BIN` loads extensions from."""
    pg_config = pgcluster.PG_BIN / "pg_config"
    if pg_config.exists():
        done = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True)
        if done.returncode == 0:
            return Path(done.stdout.strip())
    return Path("/usr/lib/postgresql/15/lib")


def available() -> str | None:
    """Why a Citus cluster cannot run here, or None when it can."""
    reason = pgcluster.available()
    if reason:
        return reason
    library = library_dir() / "citus.so"
    if not library.exists():
        return HOW_TO_GET_CITUS.format(library=library)
    return None


class Node(pgcluster.Cluster):
    """One Citus node: a PostgreSQL server that preloads the extension."""

    def settings(self) -> str:
        return super().settings() + (
            "shared_preload_libraries = 'citus'\n"
            "max_connections = 200\n"
            "max_prepared_transactions = 100\n"
            "synchronous_commit = off\n"
        )

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class CitusCluster:
    """A coordinator and two workers in one temporary directory."""

    def __init__(self) -> None:
        self.root = pgcluster.cluster_root()
        self.coordinator = Node(self.root, "coordinator")
        self.workers = [Node(self.root, "worker1"), Node(self.root, "worker2")]

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]

    def start(self) -> None:
        for node in self.nodes:
            node.init()
            node.start()

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(RuntimeError):
                node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        """The coordinator's database, as the service's DATABASE_URL."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.coordinator.port}/{database}"

    async def create_database(self, database: str) -> str:
        """`database` on every node with the extension, the workers added; its URL."""
        for node in self.nodes:
            await _execute(node.dsn(), f'CREATE DATABASE "{database}"')
            await _execute(node.dsn(database), "CREATE EXTENSION IF NOT EXISTS citus")
        await _execute(
            self.coordinator.dsn(database),
            "SELECT citus_set_coordinator_host('127.0.0.1', $1)",
            self.coordinator.port,
        )
        for worker in self.workers:
            await _execute(
                self.coordinator.dsn(database),
                "SELECT citus_add_node('127.0.0.1', $1)",
                worker.port,
            )
        return self.url(database)


async def _execute(dsn: str, statement: str, *args: object) -> None:
    connection = await asyncpg.connect(dsn, timeout=30)
    try:
        await connection.execute(statement, *args)
    finally:
        await connection.close()
