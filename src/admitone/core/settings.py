"""Settings, read from ``ADMITONE_*`` environment variables and validated at start."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
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
        description="Signs payment webhooks. Unset: generated once and kept in the data directory.",
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
        return self

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
