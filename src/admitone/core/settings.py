"""Settings, read from ``ADMITONE_*`` environment variables and validated at start."""

from __future__ import annotations

import secrets
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "test", ""}


class Settings(BaseSettings):
    """Every setting of an admitone process.

    The embedded default needs none of them: SQLite in ``./data`` and an in-process bus.
    """

    model_config = SettingsConfigDict(env_prefix="ADMITONE_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the SQLite database and the secret key live.")
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL. Unset: SQLite in the data directory. PostgreSQL: "
            "postgresql+asyncpg://user@host:5432/db (postgresql:// is accepted too)."
        ),
    )
    secret_key: str | None = Field(
        None,
        description=(
            "Signs payment webhooks, ticket QR codes and order links. "
            "Unset: generated once and kept in the data directory."
        ),
    )
    public_url: str = Field("http://127.0.0.1:8000", description="Base URL this server is reached at.")
    hold_ttl_seconds: int = Field(600, ge=10, le=86_400, description="How long a hold lasts.")
    order_ttl_seconds: int = Field(
        900, ge=10, le=7 * 86_400, description="How long an order may stay unpaid."
    )
    sweep_interval_seconds: float = Field(
        1.0, gt=0, le=3600, description="How often expired holds are swept."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413.")
    batch_max: int = Field(512, ge=1, le=10_000, description="Most hold requests written in one transaction.")
    batch_linger_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="How long an event's writer waits after the first hold request of a batch for more to "
        "join it. 0: it takes what is waiting at once.",
    )
    batch_writers: int = Field(
        1,
        ge=1,
        le=8,
        description="Hold batches of one event a process has in flight at once (PostgreSQL; SQLite: 1).",
    )
    db_pool_size: int = Field(10, ge=1, le=200, description="Connections per process (PostgreSQL).")
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        "NORMAL", description="SQLite PRAGMA synchronous (WAL mode)."
    )
    redis_url: str | None = Field(
        None, description="redis://host:6379/0 to fan live updates out across processes; unset: in-process."
    )
    live_coalesce_ms: int = Field(
        200, ge=10, le=10_000, description="Live changes are sent at most this often."
    )
    live_queue_size: int = Field(
        64, ge=4, le=10_000, description="Messages a slow live client may lag behind."
    )
    live_history: int = Field(1024, ge=16, le=100_000, description="Messages kept per event for resuming.")
    ws_ping_interval_seconds: float = Field(
        20.0,
        ge=1,
        le=3600,
        description="How often the server pings every WebSocket to find dead connections (each ping is a "
        "write and a read per connection: at 10,000 live sockets a few per cent of the server's CPU).",
    )
    ws_ping_timeout_seconds: float = Field(
        20.0, ge=1, le=3600, description="A WebSocket that does not answer a ping within this is closed."
    )
    ws_per_message_deflate: bool = Field(
        False,
        description="Offer permessage-deflate on WebSockets: smaller frames, but a compressor per connection "
        "(about twice the memory per live connection) and one compression per message and client.",
    )
    analytics_push_ms: int = Field(
        250, ge=50, le=10_000, description="Live dashboards get a fresh summary at most this often per event."
    )
    analytics_queue_size: int = Field(
        8, ge=2, le=1000, description="Summaries a slow dashboard socket may lag behind before it is dropped."
    )
    checkin_retry_seconds: float = Field(
        30,
        ge=0,
        le=3600,
        description="A scanner that scans a ticket it admitted again within this time gets 'valid' again "
        "(a retried request after a lost answer); any other scan of a used ticket is 'already_used'.",
    )
    kafka_bootstrap_servers: str | None = Field(
        None,
        description="host:port[,host:port...] of a Kafka-protocol broker for the event stream; unset: the "
        "embedded in-process bus (durable consumers run in this process, fed by the outbox relay).",
    )
    kafka_topic: str = Field(
        "admitone.events",
        min_length=1,
        max_length=249,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The topic every domain event is written to (key: the ticketing event id).",
    )
    kafka_partitions: int = Field(
        12,
        ge=1,
        le=10_000,
        description="Partitions of the topic when admitone creates it; one event's stream is in one.",
    )
    kafka_group_prefix: str = Field(
        "admitone",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Consumer groups are named <prefix>.<consumer name>; one group per durable consumer.",
    )
    kafka_session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        le=300_000,
        description="A consumer that sends no heartbeat for this long leaves its group; its partitions go "
        "to another instance. Lower: faster takeover after a crash, more rebalances on a busy machine.",
    )
    stream_worker: bool = Field(
        False,
        description="true: `admitone serve` leaves the event stream (the outbox's stream lane and the "
        "durable consumers: webhooks, e-mail, analytics) to `admitone worker` processes, and spends its "
        "time on requests. Needs PostgreSQL. false: the server runs the stream lane itself.",
    )
    stream_poll_ms: int = Field(
        100,
        ge=10,
        le=60_000,
        description="How often an `admitone worker` looks for new domain events when it is idle (it hears "
        "of no commit made in another process; while events keep coming it does not wait).",
    )
    webhook_backoff_base_ms: int = Field(
        5_000,
        ge=1,
        le=3_600_000,
        description="Webhook retries wait a random time (full jitter) up to base * 2^(attempt - 1) ms.",
    )
    webhook_backoff_cap_ms: int = Field(
        3_600_000, ge=1, le=86_400_000, description="Longest wait between two webhook attempts, in ms."
    )
    webhook_max_attempts: int = Field(
        10, ge=1, le=100, description="Webhook attempts per delivery before it is marked failed."
    )
    webhook_timeout_seconds: float = Field(
        10, gt=0, le=120, description="Time a webhook receiver has to answer one attempt."
    )
    webhook_poll_seconds: float = Field(
        5, gt=0, le=3600, description="How often the webhook sender looks for due deliveries when idle."
    )
    webhook_concurrency: int = Field(
        16, ge=1, le=1000, description="Webhook deliveries one process sends at the same time."
    )
    smtp_host: str | None = Field(
        None,
        description="SMTP server for order confirmations. Unset: e-mail is off (jobs are recorded and wait).",
    )
    smtp_port: int | None = Field(
        None, ge=1, le=65_535, description="SMTP port. Unset: 465 with ADMITONE_SMTP_TLS, else 587."
    )
    smtp_username: str | None = Field(None, description="SMTP login; set together with the password.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_tls: bool = Field(False, description="Implicit TLS from the first byte (SMTPS, usually port 465).")
    smtp_starttls: bool | None = Field(
        None,
        description="Upgrade with STARTTLS: true requires it, false never tries, unset uses it when offered.",
    )
    smtp_from: str | None = Field(
        None,
        description="Sender address, e.g. 'Tickets <tickets@example.com>'. Unset: tickets@<public URL host>.",
    )
    smtp_timeout_seconds: float = Field(30, gt=0, le=600, description="Timeout of one SMTP conversation.")
    mail_poll_seconds: float = Field(
        5, gt=0, le=3600, description="How often the e-mail sender looks for due jobs without being woken."
    )
    mail_max_attempts: int = Field(
        8, ge=1, le=100, description="Attempts before an e-mail is marked failed (organizers can resend)."
    )
    mail_retry_base_seconds: float = Field(
        30, gt=0, le=86_400, description="First retry delay; doubles per attempt, at most one hour."
    )
    mail_lease_seconds: float = Field(
        300,
        ge=5,
        le=86_400,
        description="How long a claimed e-mail belongs to its sender; after that another sender retries it.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "ADMITONE_DATABASE_URL must start with postgresql:// (PostgreSQL) or sqlite:/// (SQLite); "
                f"got {value.split('://', 1)[0]}://"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() in PLACEHOLDER_SECRETS or len(value) < 32:
            raise ValueError("ADMITONE_SECRET_KEY must be at least 32 random characters, not a placeholder")
        return value

    @model_validator(mode="after")
    def _check_public_url(self) -> Settings:
        if not self.public_url.startswith(("http://", "https://")):
            raise ValueError("ADMITONE_PUBLIC_URL must start with http:// or https://")
        self.public_url = self.public_url.rstrip("/")
        if self.webhook_backoff_cap_ms < self.webhook_backoff_base_ms:
            raise ValueError(
                "ADMITONE_WEBHOOK_BACKOFF_CAP_MS must not be below ADMITONE_WEBHOOK_BACKOFF_BASE_MS"
            )
        return self

    @model_validator(mode="after")
    def _check_stream_worker(self) -> Settings:
        # Not ``is_sqlite``: that caches the resolved URL, and a model_copy with another URL would keep it.
        sqlite = self.database_url is None or self.database_url.startswith("sqlite")
        if self.stream_worker and sqlite:
            raise ValueError(
                "ADMITONE_STREAM_WORKER needs PostgreSQL (set ADMITONE_DATABASE_URL): on SQLite the server "
                "and the worker would queue for the database's one write lock"
            )
        return self

    @model_validator(mode="after")
    def _check_smtp(self) -> Settings:
        if self.smtp_host == "":
            self.smtp_host = None
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("ADMITONE_SMTP_TLS and ADMITONE_SMTP_STARTTLS exclude each other; set one")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("ADMITONE_SMTP_USERNAME and ADMITONE_SMTP_PASSWORD go together")
        if self.smtp_from is not None:
            _, address = parseaddr(self.smtp_from)
            if "@" not in address or any(c in self.smtp_from for c in "\r\n"):
                raise ValueError("ADMITONE_SMTP_FROM must be an e-mail address, e.g. tickets@example.com")
        return self

    @property
    def resolved_smtp_port(self) -> int:
        return self.smtp_port or (465 if self.smtp_tls else 587)

    @property
    def resolved_smtp_from(self) -> str:
        """The sender address: ADMITONE_SMTP_FROM, or tickets@ the host of the public URL."""
        if self.smtp_from:
            return self.smtp_from
        host = urlsplit(self.public_url).hostname or "localhost"
        return f"tickets@{host}"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'admitone.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key
