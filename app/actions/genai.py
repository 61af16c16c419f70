"""GenAI rollups: calls and token sums per model, kept exact by every write like the others.

An action is a generative-AI call when its metadata names a model — `gen_ai.request.model`,
else `gen_ai.response.model` (a non-empty string, cut to 255 characters) — as OpenTelemetry's
GenAI conventions record it on `chat`, `text_completion` or `embeddings` spans, whichever way
the action arrived. Its tokens are `gen_ai.usage.input_tokens` and
`gen_ai.usage.output_tokens`, counted when they are whole numbers from 0 to 10^15 (anything
else counts 0). The same rule is written twice, for Python (`usage`, applied to every written,
changed or deleted row in its transaction) and for SQL (`usage_sql`, for the raw edges of a
statistics range and for a rebuild), so that both always agree.

Rows of `action_genai_rollups` are keyed like `action_rollups` (tenant, period, start, the
five dimensions) plus the model, so statistics read them with the same filters and plan.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ColumnElement, String, func, literal, literal_column, select
from sqlalchemy.sql import insert

from app.actions.models import ROLLUP_DIMENSIONS, action_genai_rollups, action_logs

MODEL_KEYS = ("gen_ai.request.model", "gen_ai.response.model")
INPUT_TOKENS, OUTPUT_TOKENS = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
MAX_TOKENS = 10**15
MODEL_LENGTH = 255
KEY_COLUMNS = ("tenant_id", "period", "start", *ROLLUP_DIMENSIONS, "model")
VALUE_COLUMNS = ("calls", "input_tokens", "output_tokens")


def _tokens(value: Any) -> int:
    return value if type(value) is int and 0 <= value < MAX_TOKENS else 0


def usage(metadata: Any) -> tuple[str, int, int] | None:
    """(model, input tokens, output tokens) of a GenAI call's metadata; None for other actions."""
    if not isinstance(metadata, Mapping):
        return None
    for key in MODEL_KEYS:
        model = metadata.get(key)
        if isinstance(model, str) and model:
            inputs, outputs = metadata.get(INPUT_TOKENS), metadata.get(OUTPUT_TOKENS)
            return model[:MODEL_LENGTH], _tokens(inputs), _tokens(outputs)
    return None


@dataclass
class UsageDelta:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, sign: int, input_tokens: int, output_tokens: int) -> None:
        self.calls += sign
        self.input_tokens += sign * input_tokens
        self.output_tokens += sign * output_tokens

    def __bool__(self) -> bool:
        return bool(self.calls or self.input_tokens or self.output_tokens)


def _postgresql_usage() -> tuple[str, str, str]:
    def value(key: str) -> str:
        return f"(action_logs.metadata -> '{key}')"

    def text(key: str) -> str:
        return f"(action_logs.metadata ->> '{key}')"

    def model(key: str) -> str:
        named = f"jsonb_typeof({value(key)}) = 'string' AND {text(key)} <> ''"
        return f"WHEN {named} THEN substr({text(key)}, 1, {MODEL_LENGTH})"

    def tokens(key: str) -> str:
        whole = f"jsonb_typeof({value(key)}) = 'number' AND {text(key)} ~ '^[0-9]{{1,15}}$'"
        return f"CASE WHEN {whole} THEN CAST({text(key)} AS BIGINT) ELSE 0 END"

    models = " ".join(model(key) for key in MODEL_KEYS)
    return f"CASE {models} END", tokens(INPUT_TOKENS), tokens(OUTPUT_TOKENS)


def _sqlite_usage() -> tuple[str, str, str]:
    def path(key: str) -> str:
        return f"'$.\"{key}\"'"

    def extract(key: str) -> str:
        return f"json_extract(action_logs.metadata, {path(key)})"

    def model(key: str) -> str:
        named = f"json_type(action_logs.metadata, {path(key)}) = 'text' AND {extract(key)} <> ''"
        return f"WHEN {named} THEN substr({extract(key)}, 1, {MODEL_LENGTH})"

    def tokens(key: str) -> str:
        whole = (
            f"json_type(action_logs.metadata, {path(key)}) = 'integer'"
            f" AND {extract(key)} BETWEEN 0 AND {MAX_TOKENS - 1}"
        )
        return f"CASE WHEN {whole} THEN {extract(key)} ELSE 0 END"

    models = " ".join(model(key) for key in MODEL_KEYS)
    return f"CASE {models} END", tokens(INPUT_TOKENS), tokens(OUTPUT_TOKENS)


@cache
def usage_sql(dialect: str) -> tuple[ColumnElement[str], ColumnElement[int], ColumnElement[int]]:
    """`usage` over `action_logs` rows in SQL: (model or NULL, input tokens, output tokens)."""
    model, inputs, outputs = _postgresql_usage() if dialect == "postgresql" else _sqlite_usage()
    return (
        literal_column(model, String),
        literal_column(inputs, BigInteger),
        literal_column(outputs, BigInteger),
    )


def upsert_rows(changes: Mapping[tuple[Any, ...], UsageDelta]) -> list[dict[str, Any]]:
    """The rows of an upsert, in key order (so concurrent writers queue, never deadlock)."""
    rows = []
    for key in sorted(changes, key=lambda k: (str(k[0]), *k[1:])):
        delta = changes[key]
        rows.append(
            {
                **dict(zip(KEY_COLUMNS, key, strict=True)),
                "calls": delta.calls,
                "input_tokens": delta.input_tokens,
                "output_tokens": delta.output_tokens,
            }
        )
    return rows


def rebuild_statement(dialect: str, period: int, start: ColumnElement[Any], tenant_id: UUID) -> Any:
    """The GenAI rollups of one period of a tenant, from its rows (`start`: the period's SQL)."""
    a = action_logs.c
    model, inputs, outputs = usage_sql(dialect)
    dimensions = [func.coalesce(a[name], "") for name in ROLLUP_DIMENSIONS[:-1]]
    grouped = (
        select(
            a.tenant_id,
            literal(period).label("period"),
            start.label("start"),
            *(
                value.label(name)
                for value, name in zip(dimensions, ROLLUP_DIMENSIONS[:-1], strict=True)
            ),
            a.status,
            model.label("model"),
            func.count().label("calls"),
            func.sum(inputs).label("input_tokens"),
            func.sum(outputs).label("output_tokens"),
        )
        .where(a.tenant_id == tenant_id, model.is_not(None))
        .group_by(a.tenant_id, start, *dimensions, a.status, model)
    )
    return insert(action_genai_rollups).from_select([*KEY_COLUMNS, *VALUE_COLUMNS], grouped)
