"""Audit records with `AuditService`'s arguments: `log_create`, `log_update`,
`log_delete` and `log`, sent to `POST /api/v1/logs/audits` through the same queue.

`tenant_id` is accepted, so `AuditService` calls run unchanged, and ignored: the tenant is always
the API key's. Like every recording method these return once the record is queued (True) or
dropped (False); the service computes the field-level diff and chains the record.

Delivery: the audit route has no client id, so after an attempt that may have reached the
service (a timeout, a dropped connection) the client looks for the record among the resource's
recent audit records before sending it again; a key without the `read` scope cannot look, and
then the record is sent again (at least once).
"""

from collections.abc import Callable
from typing import Any


def _body(
    action: str,
    resource_type: str,
    resource_id: Any,
    *,
    user_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    ip_address: str | None,
    user_agent: str | None,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "action": action,
        "resource_type": resource_type,
        "resource_id": str(resource_id),
        "user_id": user_id,
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
        "ip_address": ip_address,
        "user_agent": user_agent,
        "metadata": dict(metadata) if metadata is not None else None,
    }


def _split(changes: dict[str, Any] | None) -> tuple[Any, Any]:
    if not changes:
        return None, None
    return changes.get("before"), changes.get("after")


class Audit:
    """`logger.audit`: queue audit records."""

    def __init__(self, queue: Callable[[dict[str, Any]], bool]) -> None:
        self._queue = queue

    def log(
        self,
        action: str,
        resource_type: str,
        resource_id: Any,
        *,
        tenant_id: Any = None,
        user_id: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Any verb; `changes={"before": …, "after": …}` is accepted for before/after."""
        if changes is not None and before is None and after is None:
            before, after = _split(changes)
        return self._queue(
            _body(
                action,
                resource_type,
                resource_id,
                user_id=user_id,
                before=before,
                after=after,
                ip_address=ip_address,
                user_agent=user_agent,
                metadata=metadata,
            )
        )

    def log_create(
        self,
        *,
        resource_type: str,
        resource_id: Any,
        tenant_id: Any = None,
        user_id: str | None = None,
        data: dict[str, Any] | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        return self.log(
            "create",
            resource_type,
            resource_id,
            user_id=user_id,
            after=data or {},
            ip_address=ip_address,
            user_agent=user_agent,
            metadata=metadata,
        )

    def log_update(
        self,
        *,
        resource_type: str,
        resource_id: Any,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        tenant_id: Any = None,
        user_id: str | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        return self.log(
            "update",
            resource_type,
            resource_id,
            user_id=user_id,
            before=before,
            after=after,
            ip_address=ip_address,
            user_agent=user_agent,
            metadata=metadata,
        )

    def log_delete(
        self,
        *,
        resource_type: str,
        resource_id: Any,
        tenant_id: Any = None,
        user_id: str | None = None,
        data: dict[str, Any] | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        return self.log(
            "delete",
            resource_type,
            resource_id,
            user_id=user_id,
            before=data or {},
            ip_address=ip_address,
            user_agent=user_agent,
            metadata=metadata,
        )


class AsyncAudit:
    """`async_logger.audit`: the same methods as coroutines (`AuditService` awaited them)."""

    def __init__(self, queue: Callable[[dict[str, Any]], bool]) -> None:
        self._sync = Audit(queue)

    async def log(self, action: str, resource_type: str, resource_id: Any, **kw: Any) -> bool:
        return self._sync.log(action, resource_type, resource_id, **kw)

    async def log_create(self, **kw: Any) -> bool:
        return self._sync.log_create(**kw)

    async def log_update(self, **kw: Any) -> bool:
        return self._sync.log_update(**kw)

    async def log_delete(self, **kw: Any) -> bool:
        return self._sync.log_delete(**kw)
