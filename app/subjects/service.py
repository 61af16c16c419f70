"""Declaring personal fields and erasing data subjects.

Erasure destroys the subject's data key: their sealed fields can no longer be opened, by the
service or by anyone holding the database, its backups or its archives. No stored byte of an
audit row changes, so the chain, the Merkle log and archives verify as before. The erasure is
itself audited in the same transaction, naming the subject by a random reference, never by
their id.
"""

from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Actor
from app.core.db import utcnow
from app.core.errors import NotFound, invalid
from app.core.tenancy import use_tenant
from app.subjects.repository import SubjectRepository, service_key
from app.subjects.schemas import Erasure, SubjectConfigBody
from app.subjects.sealing import path_problem, subject_digest, subject_path_problem


class SelfAudit(Protocol):
    """How the service records its own changes in a tenant's audit trail (AuditService)."""

    async def log(
        self,
        tenant_id: UUID,
        action: str,
        resource_type: str,
        resource_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        actor: Actor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> object: ...


class SubjectService:
    def __init__(self, session: AsyncSession, tenant_id: UUID, audit: SelfAudit) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.repository = SubjectRepository(session, tenant_id)
        self.audit = audit

    async def config(self) -> SubjectConfigBody:
        await use_tenant(self.session, self.tenant_id)  # row-level security
        declared = await self.repository.config()
        if declared is None:
            return SubjectConfigBody(fields=[])
        return SubjectConfigBody(subject_path=declared[0], fields=declared[1])

    async def set_config(self, body: SubjectConfigBody, actor: Actor) -> SubjectConfigBody:
        """Declare the personal fields; applies to events recorded from now on (audited)."""
        for index, path in enumerate(body.fields):
            if (problem := path_problem(path)) is not None:
                raise invalid(("body", "fields", index), problem)
        if (problem := subject_path_problem(body.subject_path)) is not None:
            raise invalid(("body", "subject_path"), problem)
        before = await self.config()
        fields = list(dict.fromkeys(body.fields))
        await self.repository.set_config(body.subject_path, fields)
        await service_key(self.session, self.tenant_id)  # so that reads never have to make it
        after = SubjectConfigBody(subject_path=body.subject_path, fields=fields)
        await self.audit.log(
            self.tenant_id,
            "update",
            "personal_data_config",
            "audit_events",
            before.model_dump(),
            after.model_dump(),
            actor,
        )
        return after

    async def erase(self, subject_id: str, actor: Actor) -> Erasure:
        """Destroy the subject's key; a second erasure changes nothing and says so."""
        await use_tenant(self.session, self.tenant_id)
        digest = await subject_digest(self.session, self.tenant_id, subject_id)
        known = await self.repository.subject(digest)
        if known is None:
            raise NotFound(f"no personal data is held for subject {subject_id!r}")
        reference, erased_at = known
        if erased_at is not None:
            return Erasure(
                subject_id=subject_id,
                erased=False,
                erased_at=erased_at,
                reference=reference,
                detail="already erased: nothing changed",
            )
        now = utcnow()
        await self.repository.destroy_key(digest, now)
        await self.audit.log(
            self.tenant_id,
            "erase",
            "data_subject",
            str(reference),
            None,
            {"erased_at": now.isoformat()},
            actor,
        )
        return Erasure(
            subject_id=subject_id,
            erased=True,
            erased_at=now,
            reference=reference,
            detail="erased: the subject's fields now read [ERASED]",
        )
