"""Text search under row-level security: `lower(text)` and `textlike` marked LEAKPROOF.

The service reads as `actionlog_app`, held by the tenant policy of 0010. PostgreSQL evaluates a
policy's condition before any condition of the query that is not leakproof, and so never uses
such a condition as an index condition: `lower(action_name) LIKE '%term%'` could not be looked
up in the trigram indexes of 0012, and `q=` walked the tenant's rows newest-first, filtering
(2.4 s for an absent term at 1M rows in bench/RESULTS.md; 0.1 ms from the index once allowed).

Both functions are leakproof in fact: `lower` returns its argument case-folded and raises no
error for any stored text, and `textlike` returns true or false, its only error (a pattern
ending in the escape character) depending on the pattern alone, never on the row. Marking
them lets the planner test them on rows before the policy, which only ever removes rows.

Only a superuser may mark a function LEAKPROOF. Migrated by another role, this step is skipped
with a warning, and text search stays correct, only slower (a superuser can run the two
statements of `LEAKPROOF` below later). The mark is a property of this database's catalog:
a dump restored elsewhere does not carry it, and `actionlog migrate` does not repeat it, so a
restore into a new cluster runs the two statements again. The downgrade removes it.

Revision ID: 0014_text_search_under_rls
Revises: 0013_all_time_user_rollups
Create Date: 2026-12-03
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014_text_search_under_rls"
down_revision: str | None = "0013_all_time_user_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("pg_catalog.lower(text)", "pg_catalog.textlike(text, text)")
LEAKPROOF = tuple(f"ALTER FUNCTION {function} LEAKPROOF" for function in FUNCTIONS)


def _superuser() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(sa.text("SELECT current_setting('is_superuser') = 'on'")).scalar())


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    if not _superuser():
        logging.getLogger("alembic").warning(
            "not a superuser: lower(text) and textlike are not marked LEAKPROOF, so text "
            "search under row-level security cannot use the trigram indexes; a superuser "
            "can run: %s",
            "; ".join(LEAKPROOF),
        )
        return
    for statement in LEAKPROOF:
        op.execute(statement)


def downgrade() -> None:
    if not _superuser():
        return
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} NOT LEAKPROOF")
