"""The operations kit in deploy/: the alerting rules pass `promtool check rules`, and every metric
that the rules and the Grafana dashboard name is one that GET /metrics exports.

The destination lag gauge (`actionlog_destination_lag_events`) belongs to the log streams out;
it is checked only when the service exports it.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "actionlog.json"
METRIC = re.compile(r"\bactionlog_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
OPTIONAL = {"actionlog_destination_lag_events"}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: apt-get install prometheus (make test does)")
        pytest.skip("promtool is missing: apt-get install prometheus")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_cover_what_operators_watch() -> None:
    names = {base_name(m) for e in rule_expressions() for m in METRIC.findall(e)}
    for needed in (
        "actionlog_http_requests",  # 5xx rate
        "actionlog_http_request_duration_seconds",  # ingest latency
        "actionlog_group_commit_seconds",  # group-commit wait
        "actionlog_stream_queued_events",  # stream lag
        "actionlog_destination_lag_events",  # destination lag
        "actionlog_retention_failures",  # retention failures
    ):
        assert needed in names, needed


async def test_every_named_metric_is_exported(client: httpx.AsyncClient) -> None:
    await client.get("/health")  # at least one request counted
    exported = (await client.get("/metrics")).text
    families = {
        base_name(line.split()[2]) for line in exported.splitlines() if line.startswith("# TYPE")
    }
    named = {
        base_name(m)
        for e in rule_expressions() + dashboard_expressions()
        for m in METRIC.findall(e)
    }
    missing = named - families - OPTIONAL
    assert not missing, f"named by deploy/ but not exported by /metrics: {sorted(missing)}"
    for name in OPTIONAL & families:
        assert name in named
