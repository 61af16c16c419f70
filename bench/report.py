"""bench/RESULTS.md: one section per setup (engine, shape, rows, workers), each figure beside
its limit and its target. A run replaces its own section and keeps the others."""

import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setup:
    db: str
    engine: str
    shape: str
    rows: int
    burst_rows: int
    workers: int
    runs: int
    seconds: int
    machine: str

    @property
    def key(self) -> str:
        return f"{self.db}-{self.shape}-{self.rows}-w{self.workers}"


def _row(name: str, value: str, ratio: str = "", target: str = "", ok: bool | None = None) -> str:
    mark = "" if ok is None else (" ✅" if ok else " ❌")
    return f"| {name} | {value} | {ratio} | {target}{mark} |"


def _latency(f: dict[str, float], name: str) -> str:
    """Service and client p50 / p99 of a GET figure."""
    return (
        f"{f[name + '_server_p50_ms']:.1f} / {f[name + '_server_p99_ms']:.1f} ms "
        f"(client {f[name + '_p50_ms']:.1f} / {f[name + '_p99_ms']:.1f})"
    )


def _get(f: dict[str, float], label: str, name: str, limit_ms: float | None) -> str:
    p99 = f[name + "_server_p99_ms"]
    if limit_ms is None:
        return _row(label, _latency(f, name))
    ok = None if math.isnan(p99) else p99 <= limit_ms
    return _row(label, _latency(f, name), "", f"p99 ≤ {limit_ms:g} ms", ok)


def _data(setup: Setup) -> str:
    if setup.shape == "burst":
        return (
            f"{setup.rows:,} actions, 10 tenants; the big tenant holds {setup.burst_rows:,} "
            "rows that all arrived in the last hour, the rest spread over 30 days"
        )
    return f"{setup.rows:,} actions over 30 days, 10 tenants (one holds half), ~5% failures"


def render(
    f: dict[str, float],
    setup: Setup,
    sizes: dict[str, Any] | None = None,
    usage: dict[str, int] | None = None,
) -> str:
    pg = setup.db == "postgresql"
    noop, limit1 = f["noop_rps"], f["limit_1_rows_s"]
    batch_limit = f["limit_2_rows_s"] if pg else limit1
    single_limit = noop if pg else f["limit_single_rows_s"]
    page_ratio = f["page_1000_server_p50_ms"] / f["page_1_server_p50_ms"]
    audit_ratio = f["audit_ev_s"] / f["single_ev_s"]
    audit_batch_ratio = f["audit_batch_ev_s"] / f["batch_ev_s"]
    lines = [
        f"<!-- section: {setup.key} -->",
        f"## {setup.engine}, {setup.shape}, {setup.rows:,} rows, {setup.workers} worker(s)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; whole run {f['minutes']:.0f} min",
        f"- machine: {setup.machine}",
        f"- data: {_data(setup)}",
        f"- server: `actionlog serve --workers {setup.workers}` on {setup.engine}; load from wrk "
        "over loopback",
        f"- each figure: median of {setup.runs} rounds of {setup.seconds} s (export: one pass "
        "per round)",
        "",
        "| figure | value | ratio to limit | target |",
        "| --- | --- | --- | --- |",
        _row("**limit** HTTP: no-op route (`/health`, 64 conns)", f"{noop:,.0f} req/s"),
    ]
    if pg:
        lines += [
            _row("**limit** database: asyncpg COPY, 1 connection", f"{limit1:,.0f} rows/s"),
            _row("**limit** database: asyncpg COPY, 2 connections", f"{batch_limit:,.0f} rows/s"),
        ]
    else:
        lines += [
            _row(
                "**limit** database: `sqlite3` executemany, 50,000 rows per commit",
                f"{limit1:,.0f} rows/s",
            ),
            _row(
                "**limit** database: `sqlite3`, one row per commit", f"{single_limit:,.0f} rows/s"
            ),
        ]
    single_ratio = f["single_ev_s"] / single_limit
    batch_ratio = f["batch_ev_s"] / batch_limit
    lines += [
        _row("initial load (with generation)", f"{f['initial_load_rows_s']:,.0f} rows/s"),
        _row("rollup rebuild (`actionlog rollups rebuild`)", f"{f['rebuild_s']:,.0f} s"),
        _row(
            "single-event POST",
            f"{f['single_ev_s']:,.0f} ev/s",
            f"{single_ratio:.0%} of " + ("no-op" if pg else "one row per commit"),
            "≥ 50%" if pg else "",
            single_ratio >= 0.5 if pg else None,
        ),
        _row(
            "single-event POST latency p50 / p99",
            f"{f['single_p50_ms']:.1f} / {f['single_p99_ms']:.1f} ms",
        ),
        _row(
            "batch POST (100 per request)",
            f"{f['batch_ev_s']:,.0f} ev/s",
            f"{batch_ratio:.0%} of " + ("COPY (2 conns)" if pg else "executemany"),
            "≥ 60%" if pg else "",
            batch_ratio >= 0.6 if pg else None,
        ),
        _row(
            "audit POST (hash chain, one tenant)",
            f"{f['audit_ev_s']:,.0f} ev/s",
            f"{audit_ratio:.0%} of single action POST",
            "≥ 50%",
            audit_ratio >= 0.5,
        ),
        _row(
            "audit batch POST (100 per request)",
            f"{f['audit_batch_ev_s']:,.0f} ev/s",
            f"{audit_batch_ratio:.0%} of batch POST",
            "≥ 50%",
            audit_batch_ratio >= 0.5,
        ),
        _get(f, "newest page, big tenant, `status=failure`, p50 / p99", "newest_failed", 10),
        _get(f, "cursor page 1, p50 / p99", "page_1", None),
        _row(
            f"cursor page {f['deep_page']:,.0f}, p50 / p99",
            _latency(f, "page_1000"),
            f"{page_ratio:.2f}x page 1",
            "≤ 1.5x",
            page_ratio <= 1.5,
        ),
        _get(f, "text search `q=rate limit`, big tenant, p50 / p99", "search", 100),
        _get(f, "text search of an absent term, big tenant, p50 / p99", "search_rare", 100),
        _get(f, "`failed/recent` (24 h, 100), p50 / p99", "failed_recent", 10),
        _get(f, "`stats`, big tenant, all time, p50 / p99", "stats_all", 25),
        _get(f, "`stats`, last 24 h, p50 / p99", "stats_24h", 25),
        _get(f, "`stats/timeseries` by hour, 30 days, p50 / p99", "timeseries_30d", 25),
        _get(f, "`stats/timeseries` by minute, last hour, p50 / p99", "timeseries_minute", 25),
        _get(f, "`stats/users` (100), p50 / p99", "stats_users", 25),
        _get(f, "`stats/failures`, p50 / p99", "stats_failures", 25),
        _row(
            "CSV export, big tenant",
            f"{f['export_rows']:,.0f} rows at {f['export_rows_s']:,.0f} rows/s",
        ),
        _row(
            "CSV export: server RSS growth",
            f"{f['export_rss_mb']:.0f} MB",
            "",
            "< 100 MB",
            f["export_rss_mb"] < 100,
        ),
    ]
    if "single_wal_bytes_row" in f:
        lines.append(
            _row(
                "WAL per action, single POST / batch POST",
                f"{f['single_wal_bytes_row']:,.0f} / {f['batch_wal_bytes_row']:,.0f} bytes",
            )
        )
    lines += [
        "",
        "GET latencies are taken at 4 connections: the service's own time (its `Server-Timing`",
        "header, request in to response start), and in brackets what wrk saw. Targets on latency",
        "are judged on the service's p99.",
    ]
    if sizes:
        lines += ["", *_sizes(sizes)]
    if usage is not None:
        unused = [name for name, scans in usage.items() if scans == 0]
        lines += [
            "",
            "Index scans during the run (`pg_stat_user_indexes.idx_scan`, reset after the load):",
            "",
            *(f"- `{name}`: {scans:,}" for name, scans in usage.items()),
            "",
            f"Unused in this run: {', '.join(f'`{n}`' for n in unused) or 'none'}.",
        ]
    lines += ["<!-- end -->", ""]
    return "\n".join(lines)


def _sizes(sizes: dict[str, Any]) -> list[str]:
    rows = sizes["rows"]
    total, indexes = sizes["tables"]["action_logs"]
    lines = [
        f"Bytes per stored action after the load ({rows:,} rows, VACUUM ANALYZE): "
        f"{total / rows:,.0f} in all, table with TOAST {(total - indexes) / rows:,.0f}, "
        f"indexes {indexes / rows:,.0f}:",
        "",
        *(f"- `{name}`: {size / rows:,.1f} bytes/row" for name, size in sizes["indexes"].items()),
    ]
    for name in ("action_rollups", "action_user_rollups", "action_failure_rollups"):
        if name in sizes["tables"]:
            lines.append(
                f"- `{name}` (table and key): {sizes['tables'][name][0] / rows:,.1f} bytes/row"
            )
    return lines


HEADER = """# Benchmark results

One section per setup, each written by `bench/run.py` or a benchmark of its own (bench/README.md
says how to run each).
The machine is shared: runs taken while other work used its 2 cores are noisy, and say so;
ratios to limits measured in the same run are the figures to trust.
"""


def merge(existing: str, setup: Setup, section: str) -> str:
    """RESULTS.md with this setup's section replaced (or added), the others kept."""
    return replace_section(existing, setup.key, section)


def replace_section(existing: str, key: str, section: str) -> str:
    """`existing` with the section `key` replaced by `section` (or added at the end)."""
    if "<!-- section:" not in existing:
        existing = HEADER
    pattern = re.compile(rf"<!-- section: {re.escape(key)} -->.*?<!-- end -->\n?", re.S)
    if pattern.search(existing):
        return pattern.sub(lambda _: section, existing)
    return existing.rstrip("\n") + "\n\n" + section


def write_section(key: str, section: str) -> None:
    """Replace (or add) the section `key` of BENCH_RESULTS (default: bench/RESULTS.md)."""
    path = Path(os.environ.get("BENCH_RESULTS", Path(__file__).with_name("RESULTS.md")))
    path.write_text(replace_section(path.read_text() if path.exists() else "", key, section))
