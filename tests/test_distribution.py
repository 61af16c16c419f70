"""The schema's rules for a distributed PostgreSQL (Citus) sharded by `tenant_id`.

Checked here on the metadata the migrations must match (tests/test_migrations.py compares the
two): every primary key, unique constraint, unique index and foreign key of a distributed table
holds `tenant_id`, and every constraint and index is named (so migrations can address it on
any node). Reference tables are the ones read across tenants. docs/distributed.md gives the
statements of `actionlog distribute`. The service itself runs on a real Citus cluster in
tests/test_citus.py and the files of CITUS_FILES (`make test-citus`).
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

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "distributed.md"


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


def test_the_guide_gives_the_distribution_steps_in_their_order() -> None:
    text = GUIDE.read_text()
    positions = [text.find(statement) for statement in distribution_sql()]
    missing = [s for s in distribution_sql() if s not in text]
    assert not missing, missing
    assert positions == sorted(positions)
    assert "SELECT create_distributed_table('action_logs', 'tenant_id');" in distribution_sql()


def test_a_foreign_key_between_tenant_tables_is_made_again_after_both_are_distributed() -> None:
    statements = distribution_sql()
    drop = statements.index(
        "ALTER TABLE alert_states DROP CONSTRAINT IF EXISTS fk_alert_states_tenant_id_alert_rules;"
    )
    add = next(i for i, s in enumerate(statements) if s.startswith("ALTER TABLE alert_states ADD"))
    tables = [s for s in statements if "create_" in s]
    assert drop < statements.index(tables[0]) and add > statements.index(tables[-1])
    assert statements.index("SELECT create_reference_table('tenants');") < statements.index(
        "SELECT create_distributed_table('action_logs', 'tenant_id');"
    )
