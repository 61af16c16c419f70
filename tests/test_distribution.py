"""The schema is ready for a distributed PostgreSQL (Citus) sharded by `tenant_id`.

Citus cannot be installed here, so its rules are checked on the metadata the migrations must
match (tests/test_migrations.py compares the two): every primary key, unique constraint,
unique index and foreign key of a distributed table holds `tenant_id`, and every constraint
and index is named (so migrations can address it on any node). Reference tables are the ones
read across tenants. The documentation gives the statements that distribute the schema.
"""

from pathlib import Path

from sqlalchemy import ForeignKeyConstraint, Table, UniqueConstraint

from app.models import (
    DISTRIBUTION_COLUMN,
    REFERENCE_TABLES,
    Base,
    distributed_tables,
    distribution_sql,
)

ROOT = Path(__file__).resolve().parents[1]


def tenant_tables() -> list[Table]:
    return [table for name, table in Base.metadata.tables.items() if name not in REFERENCE_TABLES]


def test_every_table_is_distributed_or_a_reference_table() -> None:
    assert set(REFERENCE_TABLES) <= set(Base.metadata.tables)
    assert set(distributed_tables()) | set(REFERENCE_TABLES) == set(Base.metadata.tables)
    for table in tenant_tables():
        assert not table.c[DISTRIBUTION_COLUMN].nullable, table.name


def test_every_key_of_a_distributed_table_holds_the_tenant() -> None:
    for table in tenant_tables():
        assert DISTRIBUTION_COLUMN in table.primary_key.columns, table.name
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint | ForeignKeyConstraint):
                assert DISTRIBUTION_COLUMN in constraint.columns, (table.name, constraint.name)
        for index in table.indexes:
            if index.unique:
                assert DISTRIBUTION_COLUMN in index.columns, (table.name, index.name)


def test_foreign_keys_of_distributed_tables_point_at_reference_tables_or_by_tenant() -> None:
    # A distributed table may reference a reference table by any column, or another
    # distributed table only through the distribution column (co-located rows).
    for table in tenant_tables():
        for constraint in table.foreign_key_constraints:
            target = constraint.referred_table.name
            if target not in REFERENCE_TABLES:
                pairs = {(e.parent.name, e.column.name) for e in constraint.elements}
                assert (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) in pairs, (table.name, target)


def test_every_constraint_and_index_is_named() -> None:
    for table in Base.metadata.tables.values():
        assert table.primary_key.name, table.name
        for constraint in table.constraints:
            assert constraint.name, (table.name, constraint)
        for index in table.indexes:
            assert index.name, (table.name, index)


def test_docs_give_the_distribution_steps() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    for statement in distribution_sql():
        assert statement in text, statement
    first_distributed = distribution_sql()[len(REFERENCE_TABLES)]
    assert first_distributed == "SELECT create_distributed_table('action_logs', 'tenant_id');"
