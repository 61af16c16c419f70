"""Personal data of audit events over HTTP (`admin` scope): the declaration, and erasure."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from app.core.auth import AdminTenant, SessionDep
from app.core.errors import Forbidden, NotFound, Unauthorized, Unprocessable, error_responses
from app.subjects.schemas import Erasure, SubjectConfigBody
from app.subjects.service import SubjectService
from app.subjects.state import self_audit

router = APIRouter(prefix="/api/v1/subjects", tags=["personal data"])


async def subject_service(
    request: Request, session: SessionDep, tenant: AdminTenant
) -> SubjectService:
    audit = self_audit(request.app)(session)
    return SubjectService(session, tenant.tenant_id, audit)


Service = Annotated[SubjectService, Depends(subject_service)]
SubjectId = Annotated[str, Path(min_length=1, max_length=255, description="The subject's id")]


@router.get(
    "/config", response_model=SubjectConfigBody, responses=error_responses(Unauthorized, Forbidden)
)
async def get_config(service: Service) -> SubjectConfigBody:
    """Which fields of audit events are stored encrypted per data subject."""
    return await service.config()


@router.put(
    "/config",
    response_model=SubjectConfigBody,
    responses=error_responses(Unauthorized, Forbidden, Unprocessable),
)
async def put_config(
    body: SubjectConfigBody, service: Service, tenant: AdminTenant
) -> SubjectConfigBody:
    """Declare the personal fields of audit events recorded from now on; audited."""
    return await service.set_config(body, tenant.actor)


@router.post(
    "/{subject_id}/erase",
    response_model=Erasure,
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def erase(subject_id: SubjectId, service: Service, tenant: AdminTenant) -> Erasure:
    """Forget a data subject: their fields read "[ERASED]" everywhere; cannot be undone."""
    return await service.erase(subject_id, tenant.actor)
