"""The spool: events not yet acknowledged by the service, in a local SQLite file.

With `spool_path`, the worker moves queued events into the spool before it sends them and
deletes them once the service acknowledged them, so whatever is unacknowledged when the
process dies (crash, deploy, `kill`) is sent by the next process that opens the same file.
The only window is the in-memory queue between the call and the worker's next pass (at most
`flush_interval`, or `batch_size` events).

Several processes may share one file (a pre-forking server's workers, Celery): each row has
an owner, a process sends only its own rows, and a process adopts the rows of owners that are
gone (a dead pid on this host, or no heartbeat for `STALE_AFTER` seconds). Rows are also tied
to their destination (a hash of the URL and key), so a spool never sends one tenant's events
with another's key. WAL with `synchronous=NORMAL`: a committed row survives the application
crashing; a power loss may lose the last transactions.
"""

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from actionlog_client._events import ACTION, Event, json_fallback

# A forked child must never use or close its parent's SQLite connection (closing it could
# checkpoint and remove the WAL under the parent): it is kept here, unused, for good.
_INHERITED: list[sqlite3.Connection] = []

STALE_AFTER = 120.0  # seconds without a heartbeat before another process adopts the rows
HEARTBEAT_EVERY = 15.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    dest TEXT NOT NULL,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    body TEXT NOT NULL,
    maybe_sent INTEGER NOT NULL DEFAULT 0,
    first_sent REAL
);
CREATE INDEX IF NOT EXISTS events_owner ON events (owner, seq);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL
);
"""


def destination(base_url: str, api_key: str) -> str:
    return hashlib.sha256(f"{base_url.rstrip('/')}\n{api_key}".encode()).hexdigest()[:32]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """One process's handle on the spool file; every method is called by the worker thread,
    except `push` from `close` once the worker has stopped (hence the lock)."""

    def __init__(self, path: str | os.PathLike[str], dest: str) -> None:
        self.path = Path(path)
        self.dest = dest
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._beat = 0.0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
            self.heartbeat(force=True)
        return self._db

    def heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._beat < HEARTBEAT_EVERY:
            return
        with self._lock:
            self._conn().execute(
                "INSERT INTO owners (owner, host, pid, heartbeat) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET heartbeat = excluded.heartbeat",
                (self.owner, self.host, os.getpid(), now),
            )
        self._beat = now

    def adopt(self) -> int:
        """Take over the rows of owners that are gone; return how many rows were adopted.

        Adopted follow-ups (updates, steps, audits) are marked as possibly sent: the process
        that owned them may have died with their request in flight.
        """
        db = self._conn()
        now = time.time()
        with self._lock:
            gone = []
            for owner, host, pid, beat in db.execute(
                "SELECT owner, host, pid, heartbeat FROM owners WHERE owner != ?", (self.owner,)
            ):
                dead_here = host == self.host and not _pid_alive(pid)
                if dead_here or now - beat > STALE_AFTER:
                    gone.append(owner)
            theirs = (
                "dest = ? AND owner != ? AND (owner NOT IN (SELECT owner FROM owners)"
                + "".join(" OR owner = ?" for _ in gone)
                + ")"
            )
            params = (self.dest, self.owner, *gone)
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    f"UPDATE events SET maybe_sent = 1 WHERE kind != ? AND {theirs}",
                    (ACTION, *params),
                )
                adopted = db.execute(
                    f"UPDATE events SET owner = ? WHERE {theirs}", (self.owner, *params)
                ).rowcount
                for owner in gone:
                    remaining = db.execute(
                        "SELECT 1 FROM events WHERE owner = ? LIMIT 1", (owner,)
                    ).fetchone()
                    if remaining is None:  # rows of other destinations keep their owner
                        db.execute("DELETE FROM owners WHERE owner = ?", (owner,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return adopted

    def push(self, events: list[Event]) -> None:
        """Write events at the end of the spool (one transaction) and give them their seq."""
        if not events:
            return
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                for event in events:
                    cursor = db.execute(
                        "INSERT INTO events (dest, owner, kind, target, body, maybe_sent,"
                        " first_sent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            self.dest,
                            self.owner,
                            event.kind,
                            event.target,
                            dumps(event.body),
                            int(event.maybe_sent),
                            event.first_sent,
                        ),
                    )
                    event.seq = cursor.lastrowid
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                for event in events:
                    event.seq = None
                raise

    def head(self, limit: int, after: int = 0) -> list[Event]:
        """The oldest of this process's rows after `after`, in order."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT seq, kind, target, body, maybe_sent, first_sent FROM events "
                    "WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (self.owner, after, limit),
                )
                .fetchall()
            )
        return [
            Event(
                kind=kind,
                body=json.loads(body),
                target=target,
                seq=seq,
                maybe_sent=bool(maybe_sent),
                first_sent=first_sent,
            )
            for seq, kind, target, body, maybe_sent, first_sent in rows
        ]

    def mark_maybe_sent(self, events: list[Event]) -> None:
        rows = [(e.first_sent, e.seq) for e in events if e.seq is not None]
        if rows:
            with self._lock:
                self._conn().executemany(
                    "UPDATE events SET maybe_sent = 1, first_sent = ? WHERE seq = ?", rows
                )

    def remove(self, events: list[Event]) -> None:
        seqs = [(e.seq,) for e in events if e.seq is not None]
        if seqs:
            with self._lock:
                db = self._conn()
                db.execute("BEGIN")
                db.executemany("DELETE FROM events WHERE seq = ?", seqs)
                db.execute("COMMIT")
            for event in events:
                event.seq = None

    def count(self) -> int:
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT count(*) FROM events WHERE owner = ?", (self.owner,))
                .fetchone()
            )
        return int(row[0])

    def release(self) -> None:
        """At close: leave what is left to the next process, at once (no stale wait)."""
        with self._lock:
            if self._db is None:
                return
            self._db.execute("DELETE FROM owners WHERE owner = ?", (self.owner,))
            self._db.close()
            self._db = None

    def forget_after_fork(self) -> None:
        """In a forked child: never touch the parent's connection; start as a new owner."""
        if self._db is not None:
            _INHERITED.append(self._db)
        self._db = None
        self._lock = threading.RLock()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._beat = 0.0


def is_action(event: Event) -> bool:
    return event.kind == ACTION


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=json_fallback)
