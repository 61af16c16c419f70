"""The FastAPI application: routers, middleware, error handlers and the database lifespan."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import SecretStr

from app.actions.ingest import RECORD, RECORD_BATCH, IngestLane
from app.actions.router import router as actions_router
from app.actions.rows import RowBuilder
from app.actions.writer import DirectWriter, GroupCommitWriter
from app.alerts.router import router as alerts_router
from app.alerts.worker import AlertWorker
from app.apidocs.router import install_api_docs
from app.audits.events import EventBuilder
from app.audits.ingest import RECORD_AUDIT, RECORD_AUDITS, AuditLane
from app.audits.router import router as audits_router
from app.audits.service import AuditService
from app.audits.signing import SignerSource
from app.audits.writer import DirectAuditWriter, GroupCommitAuditWriter
from app.compat.router import router as compat_router
from app.console.router import install_console
from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker, utcnow
from app.core.errors import ErrorBody, install_error_handlers
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
from app.core.tenancy import warn_unless_bypassing
from app.offboarding.router import router as offboarding_router
from app.ops.router import router as ops_router
from app.proofs.router import router as proofs_router
from app.proofs.scheduler import TreeHeadScheduler
from app.retention.locks import RetentionLocks
from app.retention.router import router as retention_router
from app.retention.scheduler import RetentionScheduler
from app.retention.service import Pruner, RetentionConfig
from app.stats.router import router as stats_router
from app.streams.hub import StreamHub
from app.streams.retention import StreamPruner
from app.streams.router import router as streams_router
from app.subjects.router import router as subjects_router
from app.tenants.keys import KeyLookups
from app.tenants.router import admin_router, keys_router
from app.timeline.router import router as timeline_router

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


# Served by the fast lanes, before routing.
LANE_PATHS = frozenset({RECORD, RECORD_BATCH, RECORD_AUDIT, RECORD_AUDITS})


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
            await app.state.signer.get()
        except Exception as exc:
            logger.warning("audit signing key not loaded yet: %s", exc.__class__.__name__)
        if not settings.is_sqlite and settings.database_role:
            await warn_unless_bypassing(app.state.maintenance_engine)
        app.state.alert_worker.start()
        app.state.stream_pruner.start()
        app.state.retention_scheduler.start()
        app.state.tree_heads.start()
        yield
        await app.state.tree_heads.stop()
        await app.state.retention_scheduler.stop()
        await app.state.stream_pruner.close()
        await app.state.alert_worker.close()
        await app.state.writer.close()
        await app.state.audit_writer.close()
        await app.state.stream_hub.close()
        await app.state.keys.close()
        await app.state.engine.dispose()
        if app.state.maintenance_engine is not app.state.engine:
            await app.state.maintenance_engine.dispose()
        if app.state.read_engine is not app.state.engine:
            await app.state.read_engine.dispose()

    app = FastAPI(
        title="Action Log Service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=COMMON_RESPONSES,
    )
    app.state.settings = settings
    app.state.engine = create_engine(settings)
    app.state.sessionmaker = create_sessionmaker(app.state.engine)
    # Read routes may go to a replica; key lookups, writes and audit reads stay on the primary
    # (a revoked key must fail at once; a trail is read to check what was just written).
    app.state.read_engine = (
        create_engine(settings, settings.database_read_url)
        if settings.database_read_url
        else app.state.engine
    )
    app.state.read_sessionmaker = create_sessionmaker(
        app.state.read_engine.execution_options(isolation_level="AUTOCOMMIT")
    )
    # Cross-tenant queues (due webhook deliveries, which tenants have alert rules, stream
    # events past their retention) are read as the login role, which row-level security does
    # not hold; everything of one tenant runs as DATABASE_ROLE (see app/core/tenancy.py).
    app.state.maintenance_engine = (
        app.state.engine
        if settings.is_sqlite
        else create_engine(settings, as_owner=True, pool_size=2)
    )
    app.state.keys = KeyLookups(app.state.engine)
    app.state.payload_rules = PayloadRules.from_settings(settings)
    app.state.row_builder = RowBuilder(app.state.payload_rules, utcnow)
    app.state.writer = (
        GroupCommitWriter(app.state.engine, settings.group_commit_max_rows)
        if settings.group_commit and not settings.is_sqlite
        else DirectWriter(app.state.engine)
    )
    app.state.audit_events = EventBuilder(app.state.payload_rules)
    # how domains above nothing but core audit their changes (app/subjects/service.py)
    app.state.self_audit = lambda session: AuditService(session, app.state.payload_rules)
    app.state.audit_writer = (
        GroupCommitAuditWriter(app.state.engine, settings.group_commit_max_rows)
        if settings.group_commit and not settings.is_sqlite
        else DirectAuditWriter(app.state.engine)
    )

    app.state.signer = SignerSource(app.state.sessionmaker, _secret(settings.audit_signing_key))
    locks = RetentionLocks(app.state.engine)
    app.state.pruner = Pruner(
        app.state.sessionmaker,
        app.state.payload_rules,
        app.state.signer,
        locks,
        RetentionConfig.from_settings(settings),
    )
    app.state.retention_scheduler = RetentionScheduler(
        app.state.sessionmaker, app.state.pruner, locks, settings.retention_interval_minutes
    )
    app.state.tree_heads = TreeHeadScheduler(
        app.state.sessionmaker,
        app.state.maintenance_engine,
        app.state.signer,
        settings.tree_head_interval_minutes,
    )
    app.state.throttle = Throttle(settings)
    app.state.stream_hub = StreamHub(app.state.engine, settings)
    app.state.stream_pruner = StreamPruner(app.state.maintenance_engine, settings)
    app.state.alert_worker = AlertWorker(
        app.state.engine, app.state.sessionmaker, settings, app.state.maintenance_engine
    )

    install_error_handlers(app)
    app.add_middleware(IngestLane)
    app.add_middleware(AuditLane)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_batch_bytes=settings.max_batch_body_bytes,
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
    pool = app.state.engine.pool
    app.state.pool_status = lambda: (pool.checkedout(), pool.size())
    app.add_middleware(
        RequestContextMiddleware,
        headers=security_headers(settings.public_url),
        retry_after=str(settings.retry_after_seconds),
        metrics=RequestMetrics(
            app.state.pool_status, frozenset({RECORD, RECORD_BATCH, RECORD_AUDIT, RECORD_AUDITS})
        )
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
    )
    for router in routers:
        app.include_router(router)
    install_api_docs(app)
    install_console(app, settings)
    return app
