"""Every domain's ORM models, imported in one place for Alembic and the metadata.

Also where the schema's distribution is declared, for the last step of the scale path: a
distributed PostgreSQL (Citus) sharded by `tenant_id`. Tenant tables are distributed by it and
co-located, so one tenant's rows of every table live on one node and every tenant query stays
on that node; the tables read before a tenant is known (`tenants`, `api_keys`, found by key
prefix) are reference tables, copied to every node. `tests/test_distribution.py` checks that
each key of a distributed table holds `tenant_id` (Citus cannot enforce one that does not),
and docs/distributed.md lists the statements of `distribution_sql()`, which
`actionlog distribute` runs (app/core/citus.py).
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint

from app.action_schemas.models import ActionSchema, ActionSchemaVersion
from app.actions.models import ActionLog
from app.alerts.models import (
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertRule,
    AlertState,
    WebhookEndpoint,
)
from app.audits.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditLog,
    AuditMerkleNode,
    AuditSigningKey,
)
from app.core.citus import Layout
from app.core.db import Base
from app.core.idempotency import IdempotencyKey
from app.destinations.models import Destination, SecretKey
from app.proofs.models import AuditTreeHead
from app.retention.models import ArchiveRecord
from app.streamlog.models import StreamEvent, StreamHead
from app.streams.models import StreamLease
from app.subjects.models import SubjectConfig, SubjectKey, SubjectWrappingKey
from app.tenants.models import ApiKey, Tenant
from app.viewer.models import ViewerToken

__all__ = [
    "DISTRIBUTION_COLUMN",
    "REFERENCE_TABLES",
    "ActionLog",
    "ActionSchema",
    "ActionSchemaVersion",
    "AlertDelivery",
    "AlertDeliveryAttempt",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "ApiKey",
    "ArchiveRecord",
    "AuditChainHead",
    "AuditCheckpoint",
    "AuditLog",
    "AuditMerkleNode",
    "AuditSigningKey",
    "AuditTreeHead",
    "Base",
    "Destination",
    "IdempotencyKey",
    "SecretKey",
    "StreamEvent",
    "StreamHead",
    "StreamLease",
    "SubjectConfig",
    "SubjectKey",
    "SubjectWrappingKey",
    "Tenant",
    "ViewerToken",
    "WebhookEndpoint",
    "distributed_tables",
    "distribution_layout",
    "distribution_sql",
    "in_schema_of",
]

DISTRIBUTION_COLUMN = "tenant_id"
# Looked up across tenants (the tenant itself; an API key by its prefix, before the tenant is
# known; the service's audit signing keys, which sign every tenant's checkpoints): small and
# read everywhere, so copied to every node. `secret_keys`: the generated key of destination
# secrets, read by every worker.
REFERENCE_TABLES = ("tenants", "api_keys", "audit_signing_keys", "secret_keys")


def in_schema_of(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's `include_object` for comparing a database of `dialect` with the models: an
    index declared for some dialects only (`info["dialects"]`) exists on those alone."""

    def include(obj: Any, _name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
        dialects = obj.info.get("dialects") if type_ == "index" else None
        return dialects is None or dialect in dialects

    return include


def distributed_tables() -> list[str]:
    """Every tenant table, the one that others co-locate with first."""
    names = sorted(set(Base.metadata.tables) - set(REFERENCE_TABLES))
    names.remove("action_logs")
    return ["action_logs", *names]


def _tenant_foreign_keys() -> list[tuple[str, str, str]]:
    """Foreign keys from one distributed table to another: (table, name, ADD statement)."""
    keys = []
    for name in distributed_tables():
        for constraint in Base.metadata.tables[name].foreign_key_constraints:
            if constraint.referred_table.name not in REFERENCE_TABLES:
                ddl = AddConstraint(constraint)
                add = str(ddl.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
                keys.append((name, str(constraint.name), add.strip() + ";"))
    return keys


def distribution_layout() -> Layout:
    """What `actionlog distribute` creates on Citus, and in which order."""
    return Layout(
        reference=REFERENCE_TABLES,
        distributed=distributed_tables(),
        column=DISTRIBUTION_COLUMN,
        foreign_keys=_tenant_foreign_keys(),
    )


def distribution_sql() -> list[str]:
    """The statements that distribute a migrated schema on Citus, in order.

    A foreign key between two tenant tables is dropped first and made again last: making
    `tenants` a reference table turns the tables that refer to it into local tables, and a
    local table that refers to another keeps both from being distributed.
    """
    keys = _tenant_foreign_keys()
    statements = [
        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name};" for table, name, _ in keys
    ]
    statements += [f"SELECT create_reference_table('{name}');" for name in REFERENCE_TABLES]
    first, *others = distributed_tables()
    statements.append(f"SELECT create_distributed_table('{first}', '{DISTRIBUTION_COLUMN}');")
    statements += [
        f"SELECT create_distributed_table('{name}', '{DISTRIBUTION_COLUMN}', "
        f"colocate_with => '{first}');"
        for name in others
    ]
    return statements + [add for _, _, add in keys]
