"""Engine settings, read from ``QUESTLINE_*`` environment variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from questline.kit.ratelimit import parse_rule
from questline.kit.security import SecretFileError, load_or_create_secret

# The development secret earlier versions shipped with: public, so it is refused everywhere.
DEFAULT_SECRET_KEY = "questline-development-secret-change-me-please"
# Where a generated secret is kept when the database is not a local file (PostgreSQL).
SECRET_FILE_NAME = "questline.secret"
MIN_SECRET_LENGTH = 32


class InsecureSettingsError(RuntimeError):
    """Raised when the engine is asked to run with a secret anyone could know."""


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
    # Connections to Redis per process; a call finding them all busy waits for one (up to 5 s).
    redis_max_connections: int = Field(default=100, ge=1)
    # Signs admin sessions and player tokens. Unset outside production: a random one is made on
    # first start and kept in ``secret_key_file`` (mode 0600), so no two installs share one.
    secret_key: SecretStr | None = None
    # Default: beside the SQLite database (``questline.db`` -> ``questline.db.secret``); for
    # PostgreSQL, ``questline.secret`` in the working directory.
    secret_key_file: Path | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The engine's address as the public sees it (https://play.example.com), for absolute links in
    # pages others fetch (share cards' og:image); unset, the request's own address is used.
    public_url: str | None = None

    # Request limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # multipart/form-data uploads (badge images up to 5 MiB, plus the form's framing).
    max_upload_bytes: int = Field(default=6 * 1_048_576, ge=1024)
    # Path plus query string (414 beyond), and all request headers together (431 beyond).
    max_url_bytes: int = Field(default=8192, ge=256)
    max_header_bytes: int = Field(default=16_384, ge=1024)
    # The whole request body must arrive within this; a body that stalls is answered 408.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Origins whose pages may call the API from a browser (widgets, the JS SDK), comma-separated;
    # "*" for any. Credentials are bearer tokens, never cookies, so no origin gains a caller's rights.
    cors_origins: str = "*"
    rate_limit_per_key: str = "300000/minute"
    rate_limit_per_player: str = "600/minute"
    # Sign-in attempts per source address, whatever the e-mail (a brake on trying many accounts).
    rate_limit_login: str = "60/minute"
    # Wrong passwords per (e-mail, source address) that cost nothing; after them each attempt of
    # that pair waits a delay that doubles, up to the maximum. Other addresses are not slowed.
    login_free_attempts: int = Field(default=5, ge=1, le=100)
    login_max_delay_seconds: int = Field(default=900, ge=1, le=86_400)

    # Tokens.
    player_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    access_token_ttl_seconds: int = Field(default=900, ge=60)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=3600)
    # How long a process may keep a cached row (keys, apps, token revocations) without hearing of
    # a change: the backstop for changes made where no invalidation reaches (a CLI command on the
    # embedded tier). Changes made by the engine itself invalidate at once. 0 turns caches off.
    cache_max_age_seconds: float = Field(default=60.0, ge=0, le=86_400)

    # The hottest GET routes (board reads, an account) are answered by a pure-ASGI lane
    # before FastAPI's routing (``kit.fastlane``): same replies, a fraction of the CPU. Off: FastAPI
    # answers every request (for comparing the two).
    fast_lane: bool = True

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
    # The worker yields the event loop after this much synchronous work within a batch: in ``serve``
    # requests share its loop and wait for whatever it does between awaits (pipeline/worker.py Slicer).
    worker_slice_ms: float = Field(default=5.0, gt=0, le=10_000)
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    # The outbox relay: how often it looks for rows written outside the worker, and its batch size.
    relay_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Outbox rows are hashed by (app, player) into this many relay partitions, each with its own
    # cursor per subscriber, so several relays hand one subscriber's messages over side by side.
    # Every process must use the same value; change it only while the relay is caught up.
    relay_partitions: int = Field(default=1, ge=1, le=1024)
    # Webhooks: may they call loopback, private and link-local addresses? Unset: yes in development
    # and test, and never in production (whatever this says). Each call's timeout; calls in flight.
    webhooks_allow_private: bool | None = None
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_concurrency: int = Field(default=32, ge=1, le=1000)
    webhooks_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Live channels: history kept per channel (messages, seconds) for clients that reconnect with
    # their last offset; heartbeat interval; frames queued per connection before it is dropped as
    # a slow consumer; channels per connection; how often admin:monitor frames go out; at most one
    # frame of a campaign's totals per this many seconds on campaign:{id} (a burst is coalesced).
    realtime_history_size: int = Field(default=200, ge=0, le=100_000)
    realtime_history_seconds: float = Field(default=300.0, gt=0, le=86_400)
    realtime_heartbeat_seconds: float = Field(default=25.0, gt=0, le=3600)
    realtime_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    realtime_max_channels: int = Field(default=64, ge=1, le=10_000)
    realtime_monitor_seconds: float = Field(default=5.0, gt=0, le=3600)
    realtime_campaign_seconds: float = Field(default=1.0, gt=0, le=3600)

    # Ingest limits for events sent with a publishable client key.
    client_event_max_bytes: int = Field(default=8192, ge=256)
    client_event_max_past_seconds: int = Field(default=3600, ge=0)
    client_event_max_future_seconds: int = Field(default=300, ge=0)
    client_event_rate_per_player: str = "120/minute"
    # Community referral links (``GET /c/...``): how long a click id is honoured by a join, and
    # redirects per source address.
    link_click_ttl_seconds: int = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    rate_limit_links: str = "120/minute"
    # How often a player may change their own time zone (the server key and admins are not limited).
    timezone_change_interval_seconds: int = Field(default=7 * 86_400, ge=0)

    # Marketplace: brand and streamer sign-in tokens, the key that seals bank details at rest
    # (32 bytes, base64; derived from the secret key when unset), and campaign creatives.
    account_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    data_key: SecretStr | None = None
    asset_max_bytes: int = Field(default=5 * 1_048_576, ge=1024)

    # Reward fulfilment's outbound calls (signed webhook and in-game calls, chat APIs) follow
    # ``webhooks_allow_private`` above; this is their timeout.
    outbound_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Token rewards: an EVM JSON-RPC endpoint, the signer's private key (hex) and the confirmations
    # a transfer needs before its fulfilment is completed.
    token_rpc_url: str | None = None
    token_signer_key: SecretStr | None = None
    token_confirmations: int = Field(default=1, ge=1, le=1000)
    # Notifications: SMTP for e-mail; Discord and Telegram bot tokens, and their API base URLs.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "questline@localhost"
    discord_api_url: str = "https://discord.com/api/v10"
    discord_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_token: SecretStr | None = None
    # Money: the card/PSP-style payment provider (unset: only manual bank transfers), the secret its
    # webhooks are signed with, and how long a call to it may take.
    psp_url: str | None = None
    psp_api_key: SecretStr | None = None
    psp_webhook_secret: SecretStr | None = None
    psp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    psp_webhook_tolerance_seconds: int = Field(default=300, ge=1)

    # Scale-out (docs/deployment.md). ``role``: what ``questline serve`` runs in this process.
    role: Literal["all", "api", "worker", "scheduler"] = "all"
    # Apply migrations when ``serve`` starts (roles ``all`` and ``api``). Unset: yes, except in
    # production, where ``questline migrate`` is its own deployment step.
    migrate_on_start: bool | None = None
    # On SIGTERM, background loops finish the batch or job in hand within this, then stop.
    shutdown_grace_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The event log: unset = tables in the database; ``nats://host:port`` = NATS JetStream.
    event_log: str | None = None
    # Prefix of the JetStream streams, subjects and consumers (engines may share one NATS).
    event_log_namespace: str = "questline"
    # How long JetStream keeps events (the database keeps the whole log once applied).
    event_log_max_age_hours: float = Field(default=72.0, gt=0)
    # Partition leases: a worker holds each of its partitions this long between renewals.
    worker_lease_seconds: float = Field(default=10.0, ge=1, le=600)

    # Password hashing (argon2id: admins, brands, streamers). "standard" is argon2's recommended
    # cost (about 0.2 s of CPU per hash on a small server); "low" is its minimum, for test suites
    # that make hundreds of accounts, and is refused in production. A stored hash carries its own
    # parameters, so passwords hashed at either cost still verify after a change.
    password_hash_cost: Literal["standard", "low"] = "standard"

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

    @field_validator("secret_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # QUESTLINE_SECRET_KEY= (empty) means "not set", never an empty signing key
        return value

    @field_validator("rate_limit_per_key", "rate_limit_per_player", "rate_limit_login", "client_event_rate_per_player",
                     "rate_limit_links")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_rule(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate limit such as '600/minute' or '10 per second'") from exc
        return value

    @field_validator("event_log", mode="before")
    @classmethod
    def _event_log(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and not value.startswith(("nats://", "tls://")):
            raise ValueError("event_log must be unset (the database log) or a nats:// address")
        return value

    @model_validator(mode="after")
    def _standard_passwords_in_production(self) -> Settings:
        if self.env == "production" and self.password_hash_cost != "standard":
            raise ValueError("password_hash_cost 'low' is for test suites; production hashes at 'standard'")
        return self

    @property
    def should_migrate(self) -> bool:
        """Whether ``serve`` applies migrations on start (see ``migrate_on_start``)."""
        return self.migrate_on_start if self.migrate_on_start is not None else self.env != "production"

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def outbound_private_allowed(self) -> bool:
        """Whether outbound calls may reach loopback and private addresses (never in production)."""
        if self.env == "production":
            return False
        return True if self.webhooks_allow_private is None else self.webhooks_allow_private

    def check_safe_for_production(self) -> None:
        """Refuse the public development secret anywhere, and a missing or short one in production."""
        secret = self.secret_key.get_secret_value() if self.secret_key is not None else None
        if secret == DEFAULT_SECRET_KEY:
            raise InsecureSettingsError(
                "QUESTLINE_SECRET_KEY is the public development value; unset it (a random one is generated "
                "outside production) or set your own random value of 32+ characters"
            )
        if self.env == "production" and (secret is None or len(secret) < MIN_SECRET_LENGTH):
            raise InsecureSettingsError(
                "QUESTLINE_SECRET_KEY must be set to a random value of 32+ characters in production"
            )

    def secret_file(self) -> Path:
        """Where a generated secret is kept (see ``secret_key_file``)."""
        if self.secret_key_file is not None:
            return self.secret_key_file
        if self.is_sqlite:
            database = make_url(self.database_url).database
            if database:
                path = Path(database)
                return path.with_name(f"{path.name}.secret")
        return Path(SECRET_FILE_NAME)

    def with_secret_key(self) -> Settings:
        """These settings with a signing secret: the one given, else the install's own (made once)."""
        self.check_safe_for_production()
        if self.secret_key is not None:
            return self
        path = self.secret_file()
        try:
            secret = load_or_create_secret(path, min_length=MIN_SECRET_LENGTH)
        except (SecretFileError, OSError) as exc:
            raise InsecureSettingsError(f"cannot use the secret file {path}: {exc}") from exc
        return self.model_copy(update={"secret_key": SecretStr(secret)})

    def signing_key(self) -> str:
        if self.secret_key is None:  # pragma: no cover - a wiring bug: edges call with_secret_key()
            raise InsecureSettingsError("no secret key: build the engine with Settings.with_secret_key()")
        return self.secret_key.get_secret_value()
