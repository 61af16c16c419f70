"""The FastAPI application: routers, middleware, error handlers and the database lifespan."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import SecretStr

from app.action_schemas.catalog import SchemaCatalog
from app.action_schemas.router import router as action_schemas_router
from app.action_schemas.state import SchemasState
from app.actions import dependencies as actions
from app.actions.recorder import ACTION_ROWS, EngineReads
from app.actions.router import router as actions_router
from app.actions.rows import RowBuilder
from app.actions.state import ActionsState
from app.alerts.router import router as alerts_router
from app.alerts.worker import AlertWorker
from app.apidocs.router import install_api_docs
from app.audits import dependencies as audits
from app.audits.events import EventBuilder
from app.audits.recorder import AUDIT_EVENTS
from app.audits.router import router as audits_router
from app.audits.service import AuditService
from app.audits.signing import SignerSource
from app.audits.state import AuditsState
from app.compat.router import router as compat_router
from app.console.router import install_console
from app.console.state import ConsoleState
from app.core.body import BodyReader
from app.core.citus import check_at_start
from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.core.errors import ErrorBody, install_error_handlers
from app.core.lane import FastLane, LaneRoute
from app.core.limits import Throttle
from app.core.logging import configure_logging
from app.core.middleware import (
    BodyLimitMiddleware,
    JsonBodyMiddleware,
    RequestContextMiddleware,
    RequestMetrics,
    security_headers,
)
from app.core.redact import PayloadRules
from app.core.routing import LiteralPathsFirst
from app.core.tenancy import warn_unless_bypassing
from app.core.writer import make_writer
from app.destinations.repository import stream_holds
from app.destinations.router import router as destinations_router
from app.destinations.secrets import KeyRingSource
from app.destinations.sender import DestinationWorker
from app.offboarding.router import router as offboarding_router
from app.ops.router import router as ops_router
from app.otel.router import PATHS as OTLP_PATHS
from app.otel.router import router as otel_router
from app.proofs.router import router as proofs_router
from app.proofs.scheduler import TreeHeadScheduler
from app.retention.locks import RetentionLocks
from app.retention.router import router as retention_router
from app.retention.scheduler import RetentionScheduler
from app.retention.service import Pruner, RetentionConfig
from app.retention.state import RetentionState
from app.stats.router import router as stats_router
from app.streams.hub import StreamHub
from app.streams.retention import StreamPruner
from app.streams.router import router as streams_router
from app.streams.state import StreamsState
from app.subjects.router import router as subjects_router
from app.subjects.state import SubjectsState
from app.tenants.keys import KeyLookups
from app.tenants.router import admin_router, keys_router
from app.tenants.state import TenantsState
from app.timeline.router import router as timeline_router
from app.viewer.pages import install_viewer
from app.viewer.router import router as viewer_router

DESCRIPTION = """
Record what your applications did (action logs) and what they changed (audit logs), then
query them. Every call is scoped to the tenant of its API key, sent as `X-API-Key` or
`Authorization: Bearer <key>`.
"""

logger = logging.getLogger("actionlog")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# What any route may answer besides its own responses, documented once for all of them.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
    415: {"model": ErrorBody, "description": "A request body that is not declared as JSON"},
    429: {
        "model": ErrorBody,
        "description": "Rate limit exceeded, or too many failed authentications; see Retry-After",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
            "RateLimit-Policy": {"description": "The limit", "schema": {"type": "string"}},
            "RateLimit": {"description": "What is left of it", "schema": {"type": "string"}},
        },
    },
    500: {"model": ErrorBody, "description": "A bug: reported with its X-Request-ID"},
    503: {
        "model": ErrorBody,
        "description": "The database is unavailable; see Retry-After",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        },
    },
}


@dataclass(kw_only=True, eq=False)
class AppState(
    SubjectsState,
    SchemasState,
    ConsoleState,
    StreamsState,
    RetentionState,
    AuditsState,
    ActionsState,
    TenantsState,
):
    """Everything the application shares between requests, typed (app/core/state.py)."""

    alert_worker: AlertWorker
    tree_heads: TreeHeadScheduler
    destination_keys: KeyRingSource
    destination_worker: DestinationWorker


def lane_routes(state: AppState) -> dict[str, LaneRoute]:
    """The ordinary recording POSTs that the ingest lane serves before routing."""
    return {**actions.lane_routes(state), **audits.lane_routes(state)}


def lane_options(state: AppState) -> dict[str, Any]:
    """The ingest lane's arguments besides the app behind it (`FastLane(app, **options)`)."""
    return {
        "routes": lane_routes(state),
        "keys": state.keys,
        "throttle": state.throttle,
        "retry_after": str(state.settings.retry_after_seconds),
        "body_timeout": state.settings.body_timeout_seconds,
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything built at startup (models, schemas, mappers) lives as long as the process:
        # moved out of the collector's reach, it is no longer traversed by every full
        # collection, which otherwise stall a worker for tens of milliseconds now and then.
        gc.collect()
        gc.freeze()
        try:  # generated and stored on first start; loaded at first use if the database is down
            await state.signer.get()
        except Exception as exc:
            logger.warning("audit signing key not loaded yet: %s", exc.__class__.__name__)
        if not settings.is_sqlite and settings.database_role:
            await warn_unless_bypassing(state.maintenance_engine)
        await check_at_start(state.engine, settings.database_role)  # a Citus cluster's needs
        state.alert_worker.start()
        state.stream_pruner.start()
        state.retention_scheduler.start()
        state.tree_heads.start()
        state.destination_worker.start()
        await state.action_schemas.start()
        yield
        await state.action_schemas.close()
        await state.destination_worker.close()
        await state.tree_heads.stop()
        await state.retention_scheduler.stop()
        await state.stream_pruner.close()
        await state.alert_worker.close()
        await state.writer.close()
        await state.audit_writer.close()
        await state.stream_hub.close()
        await state.keys.close()
        await state.engine.dispose()
        if state.maintenance_engine is not state.engine:
            await state.maintenance_engine.dispose()
        if state.read_engine is not state.engine:
            await state.read_engine.dispose()

    app = FastAPI(
        title="Action Log Service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=COMMON_RESPONSES,
    )
    state = build_state(settings)
    # The typed state takes the place of Starlette's untyped `State` (app/core/state.py).
    app.state = state  # type: ignore[assignment]

    install_error_handlers(app)
    app.add_middleware(BodyReader)
    app.add_middleware(LiteralPathsFirst)
    app.add_middleware(FastLane, **lane_options(state))
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_batch_bytes=settings.max_batch_body_bytes,
        batch_paths=OTLP_PATHS,
    )
    app.add_middleware(JsonBodyMiddleware)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["X-Request-ID", "X-Next-Cursor", "Link", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware,
        headers=security_headers(settings.public_url),
        retry_after=str(settings.retry_after_seconds),
        metrics=RequestMetrics(state.pool_status, frozenset(lane_routes(state)))
        if settings.metrics_enabled
        else None,
    )

    routers = (
        ops_router,
        admin_router,
        offboarding_router,
        keys_router,
        proofs_router,  # before audits: /audits/tree-head is not an event id
        audits_router,
        actions_router,
        stats_router,
        compat_router,
        streams_router,
        alerts_router,
        timeline_router,
        retention_router,
        subjects_router,
        otel_router,
        destinations_router,
        action_schemas_router,
        viewer_router,
    )
    for router in routers:
        app.include_router(router)
    install_api_docs(app)
    install_console(app, settings)
    install_viewer(app)
    return app


def build_state(settings: Settings) -> AppState:
    """The objects a worker process shares between its requests, built once."""
    engine = create_engine(settings)
    # Read routes may go to a replica; key lookups, writes and audit reads stay on the primary
    # (a revoked key must fail at once; a trail is read to check what was just written).
    read_engine = (
        create_engine(settings, settings.database_read_url)
        if settings.database_read_url
        else engine
    )
    # Cross-tenant queues (due webhook deliveries, which tenants have alert rules, stream
    # events past their retention) are read as the login role, which row-level security does
    # not hold; everything of one tenant runs as DATABASE_ROLE (see app/core/tenancy.py).
    maintenance_engine = (
        engine if settings.is_sqlite else create_engine(settings, as_owner=True, pool_size=2)
    )
    sessionmaker = create_sessionmaker(engine)
    payload_rules = PayloadRules.from_settings(settings)
    signer = SignerSource(sessionmaker, _secret(settings.audit_signing_key))
    locks = RetentionLocks(engine)
    pruner = Pruner(
        sessionmaker, payload_rules, signer, locks, RetentionConfig.from_settings(settings)
    )
    action_schemas = SchemaCatalog(maintenance_engine)
    destination_keys = KeyRingSource(engine, _secret(settings.secrets_encryption_key))
    pool = engine.pool
    return AppState(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        read_engine=read_engine,
        read_sessionmaker=create_sessionmaker(read_engine),
        maintenance_engine=maintenance_engine,
        keys=KeyLookups(engine),
        throttle=Throttle(settings),
        payload_rules=payload_rules,
        pool_status=lambda: (pool.checkedout(), pool.size()),  # type: ignore[attr-defined]
        row_builder=RowBuilder(payload_rules, utcnow, action_schemas),
        action_schemas=action_schemas,
        writer=make_writer(
            engine,
            ACTION_ROWS,
            group_commit=settings.group_commit,
            max_rows=settings.group_commit_max_rows,
        ),
        action_reads=EngineReads(engine),
        audit_events=EventBuilder(payload_rules),
        # how domains below audits audit their own changes (app/subjects/service.py)
        self_audit=lambda session: AuditService(session, payload_rules),
        audit_writer=make_writer(
            engine,
            AUDIT_EVENTS,
            group_commit=settings.group_commit,
            max_rows=settings.group_commit_max_rows,
        ),
        signer=signer,
        pruner=pruner,
        retention_scheduler=RetentionScheduler(
            sessionmaker, pruner, locks, settings.retention_interval_minutes
        ),
        stream_hub=StreamHub(engine, settings),
        stream_pruner=StreamPruner(maintenance_engine, settings, stream_holds),
        alert_worker=AlertWorker(engine, sessionmaker, settings, maintenance_engine),
        tree_heads=TreeHeadScheduler(
            sessionmaker, maintenance_engine, signer, settings.tree_head_interval_minutes
        ),
        destination_keys=destination_keys,
        destination_worker=DestinationWorker(
            engine, maintenance_engine, settings, destination_keys
        ),
    )
