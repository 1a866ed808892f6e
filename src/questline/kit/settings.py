"""Engine settings, read from ``QUESTLINE_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A well-known value, so that production refuses to run with it.
DEFAULT_SECRET_KEY = "questline-development-secret-change-me-please"


class InsecureSettingsError(RuntimeError):
    """Raised when production mode is asked to run with development defaults."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QUESTLINE_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./questline.db"
    # Connections each process keeps to the database (PostgreSQL may open as many again under load;
    # SQLite opens no more). Size it to the requests you expect in flight, within the server's max_connections.
    database_pool_size: int = Field(default=10, ge=1, le=500)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    redis_url: str | None = None
    # Prefix for every Redis key this engine writes, so engines can share one Redis.
    redis_namespace: str = "questline"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Request limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # multipart/form-data uploads (badge images up to 5 MiB, plus the form's framing).
    max_upload_bytes: int = Field(default=6 * 1_048_576, ge=1024)
    # Path plus query string (414 beyond), and all request headers together (431 beyond).
    max_url_bytes: int = Field(default=8192, ge=256)
    max_header_bytes: int = Field(default=16_384, ge=1024)
    # The whole request body must arrive within this; a body that stalls is answered 408.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    rate_limit_per_key: str = "300000/minute"
    rate_limit_per_player: str = "600/minute"
    # Password attempts per admin e-mail (guessing is slowed, not just argon2-expensive).
    rate_limit_login: str = "20/minute"

    # Tokens.
    player_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    access_token_ttl_seconds: int = Field(default=900, ge=60)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=3600)
    api_key_cache_seconds: float = Field(default=5.0, ge=0)

    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    idempotency_lock_seconds: int = Field(default=60, ge=1)

    # Background roles that `questline serve` runs in-process.
    run_worker: bool = True
    run_scheduler: bool = True
    worker_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Players (with their app) are hashed into this many partitions of the event log; each has one
    # writer at a time, so several workers process partitions side by side. Change it only while
    # the backlog is empty: a player's pending events must all be in one partition.
    pipeline_partitions: int = Field(default=16, ge=1, le=1024)
    # Ingest commits the events of concurrent requests together: at most this long after the first
    # waits, or as soon as this many are waiting.
    ingest_window_ms: float = Field(default=2.0, ge=0, le=1000)
    ingest_max_events: int = Field(default=5000, ge=1, le=100_000)
    worker_idle_seconds: float = Field(default=0.05, gt=0)
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)

    # Ingest limits for events sent with a publishable client key.
    client_event_max_bytes: int = Field(default=8192, ge=256)
    client_event_max_past_seconds: int = Field(default=3600, ge=0)
    client_event_max_future_seconds: int = Field(default=300, ge=0)
    client_event_rate_per_player: str = "120/minute"

    log_level: str = "INFO"
    log_json: bool = True
    media_dir: Path = Path("./media")

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("database_url must use sqlite+aiosqlite:// or postgresql+asyncpg://")
        if value.startswith("sqlite") and (":memory:" in value or value.rstrip("/") == "sqlite+aiosqlite:"):
            # Each pooled connection would see its own empty database.
            raise ValueError("an in-memory SQLite database cannot be shared; give a file path")
        return value

    @field_validator("rate_limit_per_key", "rate_limit_per_player", "rate_limit_login", "client_event_rate_per_player")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate limit such as '600/minute' or '10 per second'") from exc
        return value

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_safe_for_production(self) -> None:
        """Refuse to run production with a secret anyone can read in the source."""
        if self.env != "production":
            return
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET_KEY or len(secret) < 32:
            raise InsecureSettingsError(
                "QUESTLINE_SECRET_KEY must be set to a random value of 32+ characters in production"
            )
