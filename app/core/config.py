"""Settings of the service, read from environment variables and `.env`."""

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REDACT_KEYS = (
    "password,passwd,pwd,pass,passphrase,secret,token,api_key,apikey,auth,authorization,"
    "credentials,cookie,set-cookie,session,sessionid,session_id,jwt,bearer,signature,"
    "private_key,credit_card,card_number,cvv,cvc,pin,otp,mfa_code,ssn,dsn,"
    "connection_string,database_url"
)
# A CSP source expression for frame-ancestors: a keyword, or scheme://host[:port] with wildcards.
_FRAME_SOURCE = re.compile(r"'none'|'self'|(?:https?://)?(?:\*\.)?[A-Za-z0-9.-]+(?::\d{1,5}|:\*)?")
UNSAFE_ADMIN_TOKENS = {"change-me", "changeme", "admin", "secret", "password"}


def key_set(keys: str) -> frozenset[str]:
    """A comma-separated list of keys as a set (trimmed, lower case, empty items dropped)."""
    return frozenset(k.strip().lower() for k in keys.split(",") if k.strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./actionlog.db"
    # A streaming replica for the read routes (lists, records, export, statistics); None: the
    # primary. Replicas lag: see "Read replicas" in docs/scaling.md.
    database_read_url: str | None = None
    admin_token: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(
        default=1,
        ge=1,
        description="Processes serving (actionlog serve); without Redis each allows its share "
        "of FAILED_AUTH_PER_MINUTE",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    # PostgreSQL: the role the service's connections switch to (SET ROLE), one that owns no
    # table and so is held by row-level security; empty: stay the login role of DATABASE_URL
    # (an owner or superuser, which the policies do not hold). See app/core/tenancy.py.
    database_role: str = Field(default="actionlog_app", pattern=r"^([a-z_][a-z0-9_$]{0,62})?$")

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=2)
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a client has to send a whole request body; then 408 and the "
        "connection is closed",
    )
    redact_keys: str = DEFAULT_REDACT_KEYS
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    group_commit: bool = True
    group_commit_max_rows: int = Field(default=5000, ge=1)
    retry_after_seconds: int = Field(default=5, ge=1)

    # The web console at /ui (app/console/): its session cookies and framing policy.
    console_secret: SecretStr | None = None
    console_session_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    console_frame_ancestors: str = "'none'"

    @field_validator("console_frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        """Sources for CSP `frame-ancestors`: 'none', 'self' or hosts, nothing that ends it."""
        # The keywords may come unquoted (shells and .env files strip the quotes).
        keywords = {"none": "'none'", "self": "'self'"}
        sources = [keywords.get(source.lower(), source) for source in value.split()]
        if not sources or not all(_FRAME_SOURCE.fullmatch(s) for s in sources):
            raise ValueError("CONSOLE_FRAME_ANCESTORS: 'none', 'self' or space-separated hosts")
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("CONSOLE_FRAME_ANCESTORS: 'none' stands alone")
        return " ".join(sources)

    # Retention (app/retention): how often the service prunes, in how large batches, and
    # where it archives what it deletes. An interval of 0 turns the scheduler off.
    retention_interval_minutes: float = Field(default=60.0, ge=0)
    retention_batch_rows: int = Field(default=5000, ge=1, le=100_000)
    retention_batch_pause_ms: int = Field(default=20, ge=0)
    # The share of time the pruner works: after a batch that took t it pauses t * (1/duty - 1)
    # (at least the pause above), so a prune leaves the cores to recording.
    retention_duty: float = Field(default=0.25, gt=0, le=1)
    archive: bool = True
    archive_dir: Path = Path("./archive")
    # The Ed25519 key that signs audit checkpoints: base64 of the 32-byte private key, or a PKCS#8
    # PEM. Unset: one is generated on first start and kept in the database.
    audit_signing_key: SecretStr | None = None
    # How often each tenant's Merkle tree head is signed and kept (app/proofs); 0: never.
    tree_head_interval_minutes: float = Field(default=60.0, ge=0)

    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="e.g. https://logs.example.com",
    )
    cors_origins: str | None = None
    redact_secrets_in_text: bool = True
    rate_limit_per_minute: int = Field(default=0, ge=0)
    rate_limit_write_per_minute: int | None = Field(default=None, ge=0)
    failed_auth_per_minute: int = Field(
        default=30,
        ge=0,
        description="Failed authentications per client address and minute (0: off); without "
        "REDIS_URL each of the WORKERS processes allows limit // WORKERS (at least 1)",
    )
    redis_url: str | None = None
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`; "
        "unset, /metrics answers anyone (set it in production)",
    )
    # Live stream (app/streams)
    stream_max_per_key: int = Field(default=5, ge=1)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    stream_retry_ms: int = Field(default=3000, ge=0)
    stream_queue_events: int = Field(default=1000, ge=1)
    stream_retention_hours: int = Field(default=24, ge=1)
    stream_poll_seconds: float = Field(default=2.0, gt=0)

    # Alerts (app/alerts)
    alerts_enabled: bool = True
    alert_eval_seconds: float = Field(default=30.0, gt=0)
    alert_window_unit_seconds: float = Field(default=60.0, gt=0)
    alert_retry_schedule: str = "5,300,1800,7200,18000,28800,28800"
    alert_send_seconds: float = Field(default=1.0, gt=0)
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    alert_test_exit_before_delivery: bool = False
    # Destinations (app/destinations): log streams out
    destinations_enabled: bool = True
    # base64 of 32 bytes; unset: one is generated on first start and kept in the database
    secrets_encryption_key: SecretStr | None = None
    destination_poll_seconds: float = Field(default=1.0, gt=0)
    destination_batch_records: int = Field(default=500, ge=1, le=10_000)
    destination_batch_bytes: int = Field(default=1_000_000, ge=1_000)
    destination_lease_seconds: float = Field(default=30.0, gt=0)
    destination_timeout_seconds: float = Field(default=10.0, gt=0)
    destination_max_backoff_seconds: float = Field(default=300.0, gt=0)
    destination_failing_after_seconds: float = Field(default=600.0, ge=0)
    # Stream events a destination has not delivered are kept this long at most
    destination_max_backlog_hours: int = Field(default=168, ge=1)

    @property
    def redact_key_set(self) -> frozenset[str]:
        return key_set(self.redact_keys)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in (self.cors_origins or "").split(",") if o.strip()]

    @property
    def alert_retry_delays(self) -> tuple[float, ...]:
        """Seconds to wait before each retry of a failed webhook delivery."""
        return tuple(float(v) for v in self.alert_retry_schedule.split(",") if v.strip())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _refuse_unsafe_admin_token(self) -> "Settings":
        token = self.admin_token.get_secret_value() if self.admin_token else None
        unsafe = token is not None and (token.lower() in UNSAFE_ADMIN_TOKENS or len(token) < 16)
        if self.environment == "production" and unsafe:
            raise ValueError("ADMIN_TOKEN must be at least 16 characters and not a placeholder")
        return self

    @model_validator(mode="after")
    def _check_retry_schedule(self) -> "Settings":
        try:
            delays = self.alert_retry_delays
        except ValueError:
            raise ValueError("ALERT_RETRY_SCHEDULE must be comma-separated seconds") from None
        if any(delay < 0 for delay in delays):
            raise ValueError("ALERT_RETRY_SCHEDULE must not hold negative delays")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
