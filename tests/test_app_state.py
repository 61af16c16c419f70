"""The application's state is one typed object, and the service reads it only through the
typed accessors (app/core/state.py), never as Starlette's untyped `app.state.<name>`."""

import ast
from dataclasses import fields
from pathlib import Path
from typing import Any

from app.actions.state import actions_state
from app.audits.state import audits_state
from app.console.state import console_signer
from app.core.state import core_state
from app.main import AppState
from app.retention.state import retention_state
from app.streams.state import streams_state
from app.tenants.state import tenants_state

APP = Path(__file__).resolve().parents[1] / "app"


def test_every_accessor_answers_the_one_state(app: Any) -> None:
    state = app.state
    assert isinstance(state, AppState)
    accessors = (
        core_state,
        actions_state,
        audits_state,
        tenants_state,
        retention_state,
        streams_state,
    )
    assert all(accessor(app) is state for accessor in accessors)
    assert console_signer(app) is state.console_signer


def test_every_field_is_built(app: Any) -> None:
    missing = [f.name for f in fields(AppState) if getattr(app.state, f.name) is None]
    assert missing == []


def _untyped_reads(path: Path) -> list[str]:
    """`<x>.app.state.<name>` and `app.state.<name>` read in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        inner = node.value
        if not (isinstance(inner, ast.Attribute) and inner.attr == "state"):
            continue
        owner = inner.value
        if (isinstance(owner, ast.Name) and owner.id == "app") or (
            isinstance(owner, ast.Attribute) and owner.attr == "app"
        ):
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno} .state.{node.attr}")
    return found


def test_no_module_reads_the_state_untyped() -> None:
    # main.py builds the state; every other module goes through an accessor
    reads = [
        read
        for path in sorted(APP.rglob("*.py"))
        if path.name != "main.py" or path.parent != APP
        for read in _untyped_reads(path)
    ]
    assert reads == []
