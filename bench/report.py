"""bench/RESULTS.md: every figure beside its limit and its target."""

from datetime import UTC, datetime


def _row(name: str, value: str, ratio: str = "", target: str = "", ok: bool | None = None) -> str:
    mark = "" if ok is None else (" ✅" if ok else " ❌")
    return f"| {name} | {value} | {ratio} | {target}{mark} |"


def _latency(f: dict[str, float], name: str) -> str:
    """Client and service p50 / p99 of a GET figure."""
    return (
        f"{f[name + '_server_p50_ms']:.1f} / {f[name + '_server_p99_ms']:.1f} ms "
        f"(client {f[name + '_p50_ms']:.1f} / {f[name + '_p99_ms']:.1f})"
    )


def render(f: dict[str, float], machine: str, rows: int, runs: int, seconds: int) -> str:
    noop, copy1, copy2 = f["noop_rps"], f["copy_1conn_rows_s"], f["copy_2conn_rows_s"]
    single_ratio = f["single_ev_s"] / noop
    batch_ratio = f["batch_ev_s"] / copy2
    page_ratio = f["page_1000_server_p50_ms"] / f["page_1_server_p50_ms"]
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine}",
        f"- data: {rows:,} actions over 30 days, 10 tenants (one holds half), ~5% failures",
        "- server: `actionlog serve --workers 2` on PostgreSQL; load from wrk over loopback",
        f"- each figure: median of {runs} rounds of {seconds} s (export: one pass per round)",
        "",
        "| figure | value | ratio to limit | target |",
        "| --- | --- | --- | --- |",
        _row("**limit** HTTP: no-op route (`/health`, 64 conns)", f"{noop:,.0f} req/s"),
        _row(
            "**limit** database: asyncpg COPY, 1 connection",
            f"{f['copy_1conn_rows_s']:,.0f} rows/s",
        ),
        _row("**limit** database: asyncpg COPY, 2 connections", f"{copy2:,.0f} rows/s"),
        _row(
            "initial load (COPY, 2 connections, with generation)",
            f"{f['initial_load_rows_s']:,.0f} rows/s",
        ),
        _row(
            "single-event POST, 64 conns",
            f"{f['single_ev_s']:,.0f} ev/s",
            f"{single_ratio:.0%} of no-op",
            "≥ 50%",
            single_ratio >= 0.5,
        ),
        _row(
            "single-event POST latency p50 / p99",
            f"{f['single_p50_ms']:.1f} / {f['single_p99_ms']:.1f} ms",
        ),
        _row(
            "batch POST (100 per request), 16 conns",
            f"{f['batch_ev_s']:,.0f} ev/s",
            f"{batch_ratio:.0%} of COPY (2 conns); {f['batch_ev_s'] / copy1:.0%} of 1 conn",
            "≥ 60%",
            batch_ratio >= 0.6,
        ),
        _row(
            "newest page, big tenant, `status=failure`, p50 / p99",
            _latency(f, "newest_failed"),
            "",
            "p99 ≤ 10 ms",
            f["newest_failed_server_p99_ms"] <= 10,
        ),
        _row("cursor page 1, p50 / p99", _latency(f, "page_1")),
        _row(
            f"cursor page {f['deep_page']:,.0f}, p50 / p99",
            _latency(f, "page_1000"),
            f"{page_ratio:.2f}x page 1",
            "≤ 1.5x",
            page_ratio <= 1.5,
        ),
        _row("`failed/recent` (24 h, 100), p50 / p99", _latency(f, "failed_recent")),
        _row(
            "`stats`, big tenant, all time, p50 / p99",
            _latency(f, "stats_all"),
            "",
            "≤ 25 ms",
            f["stats_all_server_p99_ms"] <= 25,
        ),
        _row("`stats`, last 24 h, p50 / p99", _latency(f, "stats_24h")),
        _row("`stats/timeseries` by hour, 30 days, p50 / p99", _latency(f, "timeseries_30d")),
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
        _row(
            "audit POST (hash chain, one tenant), 64 conns",
            f"{f['audit_ev_s']:,.0f} ev/s",
            f"{f['audit_ev_s'] / noop:.0%} of no-op",
        ),
        "",
        "GET latencies are taken at 4 connections. The first pair is the service's own time, from",
        "its `Server-Timing` header (request in to response start); the pair in brackets is what",
        "wrk saw, which adds the loopback and the waits of wrk, PostgreSQL and the workers for",
        "the same 2 cores. Targets on latency are judged on the service's p99.",
        "",
    ]
    return "\n".join(lines)
