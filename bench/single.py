"""Single-event ingest beside the no-op route, what one recorded action writes, and where a
worker's time goes.

One fresh PostgreSQL database (`BENCH_PG`'s server, database `BENCH_DB_NAME`), one tenant, then
`actionlog serve --workers 2` with default settings (row-level security on, metrics on), driven
by wrk from a separate process over loopback. BENCH_RUNS rounds, each: the no-op route
(`/health`, 64 connections) then single-event `POST /api/v1/logs/actions` (64 connections),
BENCH_SECONDS each; the ratio is taken per round and the median reported, so drift of a shared
machine weighs on both sides of each ratio.

Then one more POST round on a freshly started service, stopped right after, and what the
database wrote through it (pg_stat_user_tables: rows inserted, updated, HOT-updated, per table;
pg_current_wal_lsn; commits), divided by the actions recorded. With BENCH_PROFILE=1 it also
samples one worker with py-spy through one extra POST round and prints the functions holding
the most samples (own and total).

Run: .venv/bin/python bench/single.py   (BENCH_RUNS 3, BENCH_SECONDS 5; prints a Markdown
section for bench/RESULTS.md). BENCH_PRIVATE_PG=1 runs it on a PostgreSQL server started for
the run (fsync on, default settings otherwise), whose WAL and flushes no other work shares:
pg_current_wal_lsn is the whole server's.
"""

import asyncio
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import httpx

ROOT = Path(__file__).resolve().parents[1]
PRIVATE = os.environ.get("BENCH_PRIVATE_PG", "") == "1"
if PRIVATE:
    # A PostgreSQL of this run's own (Debian's binaries, as the replica tests start them), so
    # that its WAL and its flushes are this service's alone on a server other work shares.
    sys.path.insert(0, str(ROOT))
    from tests import pgcluster

    class _Durable(pgcluster.Cluster):
        def settings(self) -> str:  # the test clusters run with fsync off; this one must not
            return super().settings().replace("fsync = off\n", "")

    _CLUSTER = _Durable(pgcluster.cluster_root(), "bench")
    os.environ["BENCH_PG"] = f"postgresql://postgres@127.0.0.1:{_CLUSTER.port}/postgres"

import ingest  # noqa: E402
import wrk  # noqa: E402

# BENCH_KIND=audit: single audit events (`POST /api/v1/logs/audits`, hash chain and Merkle log
# included) instead of actions.
KIND = os.environ.get("BENCH_KIND", "action")
SCRIPT, PATH, RECORDS = {
    "action": ("post_one.lua", ingest.ACTIONS, "action_logs"),
    "audit": ("post_audit.lua", "/api/v1/logs/audits", "audit_logs"),
}[KIND]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
PROFILE = os.environ.get("BENCH_PROFILE", "") == "1"


async def snapshot() -> dict[str, Any]:
    """What the database has written so far (taken with the service stopped: a backend's
    statistics are flushed when it exits, and may wait up to 10 s while it idles)."""
    tables = await ingest.sql(
        "SELECT s.relname, s.n_tup_ins, s.n_tup_upd, s.n_tup_hot_upd, "
        "(SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid) AS indexes "
        "FROM pg_stat_user_tables s"
    )
    wal = await ingest.sql("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS bytes")
    database = await ingest.sql(
        f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{ingest.DB_NAME}'"
    )
    actions = await ingest.sql(f"SELECT count(*) AS n FROM {RECORDS}")
    return {
        "tables": {r["relname"]: dict(r) for r in tables},
        "wal": int(wal[0]["bytes"]),
        "commits": int(database[0]["xact_commit"]),
        "actions": int(actions[0]["n"]),
    }


def writes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per recorded action: rows inserted and updated per table, index entries, WAL bytes."""
    n = max(1, after["actions"] - before["actions"])
    per: dict[str, Any] = {"actions": n, "tables": {}}
    entries = 0.0
    for name, row in after["tables"].items():
        old = before["tables"].get(name, {"n_tup_ins": 0, "n_tup_upd": 0, "n_tup_hot_upd": 0})
        inserted = row["n_tup_ins"] - old["n_tup_ins"]
        updated = row["n_tup_upd"] - old["n_tup_upd"]
        hot = row["n_tup_hot_upd"] - old["n_tup_hot_upd"]
        if inserted or updated:
            # a new heap tuple not HOT-updated gets an entry in every index of its table
            index_entries = (inserted + updated - hot) * row["indexes"]
            entries += index_entries
            per["tables"][name] = (inserted / n, updated / n, hot / n, index_entries / n)
    per["index_entries"] = entries / n
    per["wal"] = (after["wal"] - before["wal"]) / n
    per["commits"] = (after["commits"] - before["commits"]) / n
    return per


def profile(pid: int, base: str, key: str) -> str:
    """py-spy samples of one worker through a POST round: the top functions."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "profile.txt"
        spy = subprocess.Popen(
            [str(ingest.BIN / "py-spy"), "record", "--pid", str(pid), "--duration",
             str(SECONDS), "--rate", "250", "--format", "raw", "--output", str(out),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wrk.run(base, SCRIPT, key=key, path=PATH, connections=64,
                seconds=SECONDS)  # fmt: skip
        spy.wait(timeout=60)
        return summarize(out.read_text())


def summarize(raw: str, top: int = 25) -> str:
    """Own and total share of the samples per function, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
                  for f in stack.split(";")]  # fmt: skip
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"samples: {samples}", "", "| function | own | total |", "| --- | ---: | ---: |"]
    for frame, n in total.most_common(top):
        lines.append(f"| `{frame}` | {own[frame] / samples:.1%} | {n / samples:.1%} |")
    lines += ["", "| function (own time) | own |", "| --- | ---: |"]
    for frame, n in own.most_common(top):
        lines.append(f"| `{frame}` | {n / samples:.1%} |")
    return "\n".join(lines)


def group_size(base: str) -> float:
    """Mean rows per group commit so far, from the service's metrics (all workers)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    metric = (
        "actionlog_audit_group_commit_rows" if KIND == "audit" else "actionlog_group_commit_rows"
    )
    values = {}
    for line in text.splitlines():
        for name in (f"{metric}_sum", f"{metric}_count"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[-1])
    return values[f"{metric}_sum"] / values[f"{metric}_count"]


async def row_sizes() -> dict[str, float]:
    """Mean stored size of a row (heap tuple, TOAST inline) of the table each action adds a row
    to (its stream event is that row: app/streams/events.py)."""
    found = {}
    for table in (RECORDS,):
        rows = await ingest.sql(f"SELECT avg(pg_column_size(t.*))::float AS b FROM {table} t")
        found[table] = float(rows[0]["b"] or 0)
    return found


def worker_pids(parent: int) -> list[int]:
    """The uvicorn workers of a served process (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def main() -> None:
    if not PRIVATE:
        run()
        return
    _CLUSTER.init()
    _CLUSTER.start()
    try:
        run()
    finally:
        _CLUSTER.stop()
        pgcluster.shutil.rmtree(_CLUSTER.data.parent, ignore_errors=True)


def run() -> None:
    _read_key, key = ingest.prepare()
    rounds: list[tuple[float, float]] = []
    try:
        process, base = ingest.serve(2, {})
        try:
            wrk.run(base, SCRIPT, key=key, path=PATH, connections=64, seconds=2)
            for number in range(1, RUNS + 1):
                noop = wrk.run(base, "get.lua", path="/health", connections=64, seconds=SECONDS)
                single = wrk.run(base, SCRIPT, key=key, path=PATH,
                                 connections=64, seconds=SECONDS)  # fmt: skip
                rounds.append((noop.requests_per_s, single.requests_per_s))
                print(f"round {number}: no-op {noop.requests_per_s:,.0f} req/s, single "
                      f"{single.requests_per_s:,.0f} ev/s "
                      f"({single.requests_per_s / noop.requests_per_s:.0%}), "
                      f"non-2xx {single.non_2xx}", flush=True)  # fmt: skip
            groups = group_size(base)
            spied = profile(worker_pids(process.pid)[0], base, key) if PROFILE else ""
        finally:
            process.terminate()
            process.wait(timeout=30)
        before = asyncio.run(snapshot())
        process, base = ingest.serve(2, {})
        try:
            wrk.run(base, SCRIPT, key=key, path=PATH, connections=64,
                    seconds=SECONDS)  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=30)
        time.sleep(1)  # the backends' exits (and their statistics) follow the service's
        counted = writes(before, asyncio.run(snapshot()))
        sizes = asyncio.run(row_sizes())
    finally:
        asyncio.run(ingest.sql(f"DROP DATABASE IF EXISTS {ingest.DB_NAME} WITH (FORCE)",
                               ingest.SERVER))  # fmt: skip
    ratios = [single / noop for noop, single in rounds]
    print()
    print(f"no-op req/s (median): {statistics.median(r[0] for r in rounds):,.0f}")
    print(f"single ev/s (median): {statistics.median(r[1] for r in rounds):,.0f}")
    print(f"ratio per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}")  # fmt: skip
    print(f"mean rows per group commit: {groups:.1f}")
    print(f"\nper recorded action ({counted['actions']:,} actions; "
          f"{counted['commits']:.3f} commits per action):")  # fmt: skip
    print("| table | rows inserted | rows updated | of them HOT | index entries |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (ins, upd, hot, entries) in sorted(counted["tables"].items()):
        print(f"| {name} | {ins:.2f} | {upd:.2f} | {hot:.2f} | {entries:.2f} |")
    print(f"\nindex entries per action: {counted['index_entries']:.2f}; "
          f"WAL bytes per action: {counted['wal']:,.0f}")  # fmt: skip
    print("mean row size: " + ", ".join(f"{t} {b:,.0f} bytes" for t, b in sizes.items()))
    if spied:
        print("\n" + spied)


if __name__ == "__main__":
    main()
