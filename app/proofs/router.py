"""The Merkle log API: signed tree heads, inclusion proofs and consistency proofs (RFC 9162).

Mounted under the audit routes' prefix and before them, so that `/audits/tree-head` and
`/audits/consistency` are not read as an event id. Everything here needs the `read` scope;
another tenant's event is a 404, as a missing one is.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request

from app.audits.signing import Signer
from app.audits.state import audits_state
from app.core.auth import ReadTenant, SessionDep
from app.core.errors import BadRequest, Forbidden, NotFound, Unauthorized, error_responses
from app.proofs.schemas import ConsistencyProof, InclusionProof, TreeHeadRead
from app.proofs.service import ProofService

router = APIRouter(
    prefix="/api/v1/logs/audits",
    tags=["proofs"],
    responses=error_responses(Unauthorized, Forbidden),
)

Size = Annotated[int, Query(ge=1, le=2**62, description="A tree size (a number of events)")]


async def get_proof_service(tenant: ReadTenant, session: SessionDep) -> ProofService:
    return ProofService(session, tenant.tenant_id)


async def get_signer(request: Request) -> Signer:
    signer: Signer = await audits_state(request.app).signer.get()
    return signer


ProofServiceDep = Annotated[ProofService, Depends(get_proof_service)]
SignerDep = Annotated[Signer, Depends(get_signer)]


@router.get("/tree-head", response_model=TreeHeadRead)
async def tree_head(service: ProofServiceDep, signer: SignerDep) -> TreeHeadRead:
    """The tenant's Merkle tree of audit events as it is now, signed (Ed25519)."""
    head = await service.current_head(signer)
    return TreeHeadRead(**head.as_json())


@router.get("/tree-heads", response_model=list[TreeHeadRead])
async def tree_heads(
    service: ProofServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many (max 1000)")] = 100,
    before: Annotated[
        int | None,
        Query(ge=1, le=2**62, description="Only heads of a smaller tree (the next page)"),
    ] = None,
) -> list[TreeHeadRead]:
    """Tree heads signed on the service's schedule and kept, newest (largest) first."""
    return [TreeHeadRead(**head.as_json()) for head in await service.kept_heads(limit, before)]


@router.get(
    "/consistency",
    response_model=ConsistencyProof,
    responses=error_responses(BadRequest),
)
async def consistency(service: ProofServiceDep, first: Size, second: Size) -> ConsistencyProof:
    """Proof that the tree of `first` events is a prefix of the tree of `second` events."""
    return await service.consistency(first, second)


@router.get(
    "/{audit_id}/proof",
    response_model=InclusionProof,
    responses=error_responses(BadRequest, NotFound),
)
async def inclusion_proof(
    service: ProofServiceDep,
    audit_id: Annotated[UUID, Path(description="The audit event's id")],
    tree_size: Annotated[
        int | None, Query(ge=1, le=2**62, description="Default: the current tree")
    ] = None,
) -> InclusionProof:
    """Proof that the event is in the tree of `tree_size` events, also after retention."""
    return await service.inclusion(audit_id, tree_size)
