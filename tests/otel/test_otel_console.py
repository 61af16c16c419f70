"""An exported trace is shown as a waterfall on its root action's page, in Debian's Chromium:
every span under its parent, indented by depth, bars placed by start and sized by duration,
the failure marked — for a trace of two thousand spans."""

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.trace import Status as SpanStatus
from opentelemetry.trace import StatusCode

from app.otel.values import span_action_id
from tests.conftest import TenantHandle
from tests.console.test_console_browser import Watched, chromium
from tests.live import Process
from tests.otel.conftest import export, recorded_spans

with contextlib.suppress(ImportError):  # the dev extras install it
    from playwright.async_api import Browser, Page, expect

__all__ = ["chromium"]  # the browser fixture of the console tests
TOOLS, CALLS = 40, 49  # 1 run + 40 tools x (1 + 49 calls) = 2,001 spans


def big_run() -> tuple[list[Any], Any]:
    """An agent run: 40 tool calls in a row, each with 49 model calls; one tool fails."""
    provider, memory = recorded_spans("planner")
    tracer = provider.get_tracer("agent")
    clock = 1_700_000_000_000_000_000
    with tracer.start_as_current_span(
        "invoke_agent planner", start_time=clock, end_on_exit=False
    ) as root:
        for t in range(TOOLS):
            start = clock + t * 10_000_000
            with tracer.start_as_current_span(
                f"execute_tool step-{t}", start_time=start, end_on_exit=False
            ) as tool:
                for c in range(CALLS):
                    call = tracer.start_span(f"chat {t}.{c}", start_time=start + c * 100_000)
                    call.end(end_time=start + c * 100_000 + 80_000)
                if t == 7:
                    tool.set_status(SpanStatus(StatusCode.ERROR, "tool crashed"))
                tool.end(end_time=start + 9_000_000)
        root_context = root.get_span_context()
    root.end(end_time=clock + TOOLS * 10_000_000)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans, root_context


@pytest.fixture
async def page(chromium: "Browser", service: Process) -> AsyncIterator["Page"]:
    context = await chromium.new_context(base_url=service.url)
    tab = await context.new_page()
    watched = Watched(tab, service.url)
    yield tab
    await context.close()
    assert watched.foreign == [] and watched.errors == []


async def test_a_trace_of_two_thousand_spans_renders_as_a_waterfall(
    page: "Page", service: Process, http: httpx.AsyncClient, agent_tenant: TenantHandle
) -> None:
    spans, root = big_run()
    assert len(spans) == 1 + TOOLS * (1 + CALLS)
    for start in range(0, len(spans), 512):
        await export(service.url, agent_tenant.key, spans[start : start + 512])
    root_id = span_action_id(root.trace_id.to_bytes(16, "big"), root.span_id.to_bytes(8, "big"))

    await page.goto(f"/ui/actions/{root_id}")
    await page.fill("#api_key", agent_tenant.key)
    await page.click("form[action='/ui/sign-in'] button[type=submit]")
    await expect(page).to_have_url(re.compile(f"/ui/actions/{root_id}$"))
    rows = page.locator("#waterfall tbody tr")
    await expect(rows).to_have_count(len(spans))
    await expect(rows.first).to_contain_text("invoke_agent planner")
    await expect(rows.nth(1)).to_contain_text("execute_tool step-0")
    await expect(rows.nth(2)).to_contain_text("chat 0.0")  # a child right under its parent
    depths = await rows.evaluate_all("rows => rows.slice(0, 3).map(r => r.dataset.depth)")
    assert depths == ["0", "1", "2"]
    indents = await page.locator("#waterfall tbody tr td.name").evaluate_all(
        "cells => cells.slice(0, 3).map(c => parseFloat(getComputedStyle(c).paddingLeft))"
    )
    assert indents[0] < indents[1] < indents[2]  # indented by depth

    failed = page.locator("#waterfall tr.failed")
    await expect(failed).to_have_count(1)
    await expect(failed).to_contain_text("execute_tool step-7")
    await expect(failed.locator("rect.bar-failed")).to_have_count(1)
    fill = await failed.locator("rect").evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(179, 38, 30)"  # the console's colour of failures

    def tool_bar(t: int) -> Any:
        link = page.get_by_role("link", name=f"execute_tool step-{t}", exact=True)
        return page.locator("#waterfall tbody tr", has=link).locator("rect")

    xs = [float(await tool_bar(t).get_attribute("x") or "nan") for t in (0, 20, 39)]
    assert xs[0] < xs[1] < xs[2]  # placed by start time
    boxes = [await tool_bar(t).bounding_box() for t in (0, 20)]
    assert boxes[0] and boxes[1] and boxes[0]["x"] < boxes[1]["x"]  # and drawn so
    root_box = await rows.first.locator("rect").bounding_box()
    assert root_box and root_box["width"] > 30 * boxes[0]["width"]  # sized by duration
