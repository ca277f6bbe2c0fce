"""Settings of the mock, read once from an injected environment mapping.

The real service's variable names are kept where it has them (``SHARE_BASE_URL``,
``APP_URL``, ``RESEND_API_KEY``, ``EMAIL_FROM``, ``RESEND_BASE_URL``, ``S3_PUBLIC_URL``), so a
partner's deployment configuration carries over; mock-only knobs are ``CRAFTKIT_MOCK_*``.
A bad value fails at start with a message that names the variable, never later.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mock_server.model.addresses import is_loopback
from mock_server.model.faults import EMAIL_TRANSPORTS

if TYPE_CHECKING:
    from mock_server.model.faults import EmailTransportName

DEFAULT_RESEND_BASE_URL = "https://api.resend.com"
CONTROL_TOKEN_HEADER = "X-Craftkit-Control-Token"
"""Where a client sends ``CRAFTKIT_MOCK_CONTROL_TOKEN`` (mock-control.yaml's ``controlToken``)."""
STORE_SCHEMES = ("redis", "rediss", "unix")
__all__ = ["CONTROL_TOKEN_HEADER", "Settings", "SettingsError", "is_loopback"]


class SettingsError(ValueError):
    """A setting has a value the mock cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one mock instance."""

    share_base_url: str | None = None
    app_url: str | None = None
    resend_api_key: str | None = None
    email_from: str | None = None
    resend_base_url: str = DEFAULT_RESEND_BASE_URL
    s3_public_url: str | None = None
    email_transport: EmailTransportName = "outbox"
    queue_seconds: float = 0.5
    render_seconds: float = 1.5
    max_body_bytes: int = field(default_factory=lambda: _spec_body_limit())
    journal_size: int = 1000
    outbox_size: int = 1000
    trust_forwarded_for: bool = True
    token_secret: bytes | None = None
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    control_token: str | None = None
    store_url: str | None = None
    store_prefix: str = "craftkit"
    sandbox_idle_seconds: float = 7 * 24 * 3600
    idempotency_keys: int = 10_000
    dedup_keys: int = 10_000
    max_renders: int = 10_000
    max_projects: int = 10_000
    max_body_values: int = 100_000
    """JSON values (objects, arrays, strings, numbers…) one request body may hold."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names besides the loopback ones the control API answers to (without a token)."""
    max_subscriptions: int = 20
    delivery_log_size: int = 1000
    webhook_hosts: tuple[str, ...] = ()
    """Hosts besides loopback that webhooks may be delivered to (``*``: any)."""
    webhook_timeout: float = field(default_factory=lambda: _spec_webhook_timeout())
    """Seconds a receiver has to answer an attempt (the contract's 15 by default)."""

    def __post_init__(self) -> None:
        """Refuse a combination that cannot work, whichever way the settings were made."""
        if self.store_url is not None and self.token_secret is None:
            raise SettingsError(
                "The Redis store (--store or CRAFTKIT_MOCK_STORE) needs "
                "CRAFTKIT_MOCK_TOKEN_SECRET (32 to 128 hex "
                "digits, the same for every mock process): share links are derived with it, "
                "so every process must show the same ones and they must survive restarts. "
                f"For example: CRAFTKIT_MOCK_TOKEN_SECRET={secrets.token_hex(32)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping (``os.environ`` or a test's dict)."""

        def text(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def url(name: str) -> str | None:
            value = text(name)
            if value is None:
                return None
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
            return value.rstrip("/")

        def number(name: str, default: float, minimum: float) -> float:
            value = text(name)
            if value is None:
                return default
            try:
                parsed = float(value)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {value!r}") from None
            if not math.isfinite(parsed) or parsed < minimum:
                raise SettingsError(f"{name} must be a number >= {minimum}, got {value!r}")
            return parsed

        def flag(name: str, default: bool) -> bool:
            value = text(name)
            if value is None:
                return default
            lowered = value.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{name} must be true or false, got {value!r}")

        def names(name: str) -> tuple[str, ...]:
            return tuple(
                host.strip().lower() for host in (text(name) or "").split(",") if host.strip()
            )

        transport = text("CRAFTKIT_MOCK_EMAIL_TRANSPORT") or "outbox"
        if transport not in EMAIL_TRANSPORTS:
            raise SettingsError(
                f"CRAFTKIT_MOCK_EMAIL_TRANSPORT must be one of {', '.join(EMAIL_TRANSPORTS)}, "
                f"got {transport!r}"
            )
        secret = text("CRAFTKIT_MOCK_TOKEN_SECRET")
        try:
            token_secret = bytes.fromhex(secret) if secret else None
        except ValueError:
            raise SettingsError("CRAFTKIT_MOCK_TOKEN_SECRET must be hex") from None
        if token_secret is not None and not 16 <= len(token_secret) <= 64:
            raise SettingsError(
                "CRAFTKIT_MOCK_TOKEN_SECRET must be 16 to 64 bytes (32 to 128 hex digits)"
            )
        control_token = text("CRAFTKIT_MOCK_CONTROL_TOKEN")
        if control_token is not None and len(control_token) < 16:
            raise SettingsError("CRAFTKIT_MOCK_CONTROL_TOKEN must be at least 16 characters")
        store_url = text("CRAFTKIT_MOCK_STORE")
        if store_url == "memory":
            store_url = None
        if store_url is not None and urlsplit(store_url).scheme not in STORE_SCHEMES:
            raise SettingsError(
                "CRAFTKIT_MOCK_STORE must be memory or a Redis URL "
                f"(redis://host:port/db, rediss://, unix://), got {store_url!r}"
            )
        prefix = text("CRAFTKIT_MOCK_STORE_PREFIX") or cls.store_prefix
        if not all(c.isalnum() or c in "-_." for c in prefix):
            raise SettingsError(
                "CRAFTKIT_MOCK_STORE_PREFIX may hold letters, digits, '-', '_' and '.', "
                f"got {prefix!r}"
            )
        email_from = text("EMAIL_FROM")
        if email_from is not None and "@" not in email_from:
            raise SettingsError(f"EMAIL_FROM must contain an address, got {email_from!r}")
        return cls(
            share_base_url=url("SHARE_BASE_URL"),
            app_url=url("APP_URL"),
            resend_api_key=text("RESEND_API_KEY"),
            email_from=email_from,
            resend_base_url=url("RESEND_BASE_URL") or DEFAULT_RESEND_BASE_URL,
            s3_public_url=url("S3_PUBLIC_URL"),
            email_transport=transport,
            queue_seconds=number("CRAFTKIT_MOCK_QUEUE_SECONDS", cls.queue_seconds, 0),
            render_seconds=number("CRAFTKIT_MOCK_RENDER_SECONDS", cls.render_seconds, 0),
            max_body_bytes=int(number("CRAFTKIT_MOCK_MAX_BODY_BYTES", _spec_body_limit(), 1)),
            journal_size=int(number("CRAFTKIT_MOCK_JOURNAL_SIZE", cls.journal_size, 1)),
            outbox_size=int(number("CRAFTKIT_MOCK_OUTBOX_SIZE", cls.outbox_size, 1)),
            trust_forwarded_for=flag("CRAFTKIT_MOCK_TRUST_FORWARDED_FOR", True),
            token_secret=token_secret,
            header_timeout=number("CRAFTKIT_MOCK_HEADER_TIMEOUT", cls.header_timeout, 0.01),
            body_timeout=number("CRAFTKIT_MOCK_BODY_TIMEOUT", cls.body_timeout, 0.01),
            max_header_bytes=int(
                number("CRAFTKIT_MOCK_MAX_HEADER_BYTES", cls.max_header_bytes, 1024)
            ),
            max_headers=int(number("CRAFTKIT_MOCK_MAX_HEADERS", cls.max_headers, 10)),
            control_token=control_token,
            store_url=store_url,
            store_prefix=prefix,
            idempotency_keys=int(number("CRAFTKIT_MOCK_IDEMPOTENCY_KEYS", cls.idempotency_keys, 1)),
            dedup_keys=int(number("CRAFTKIT_MOCK_DEDUP_KEYS", cls.dedup_keys, 1)),
            max_renders=int(number("CRAFTKIT_MOCK_MAX_RENDERS", cls.max_renders, 1)),
            max_projects=int(number("CRAFTKIT_MOCK_MAX_PROJECTS", cls.max_projects, 1)),
            max_body_values=int(number("CRAFTKIT_MOCK_MAX_BODY_VALUES", cls.max_body_values, 1)),
            allowed_hosts=names("CRAFTKIT_MOCK_ALLOWED_HOSTS"),
            webhook_hosts=names("CRAFTKIT_MOCK_WEBHOOK_HOSTS"),
            max_subscriptions=int(
                number("CRAFTKIT_MOCK_MAX_SUBSCRIPTIONS", cls.max_subscriptions, 1)
            ),
            delivery_log_size=int(
                number("CRAFTKIT_MOCK_DELIVERY_LOG_SIZE", cls.delivery_log_size, 1)
            ),
            webhook_timeout=number("CRAFTKIT_MOCK_WEBHOOK_TIMEOUT", _spec_webhook_timeout(), 0.01),
            sandbox_idle_seconds=number(
                "CRAFTKIT_MOCK_SANDBOX_IDLE_SECONDS", cls.sandbox_idle_seconds, 1
            ),
        )


def _spec_body_limit() -> int:
    """The spec's body limit (notes B.6), read when settings are made, not at import."""
    import craftkit_spec

    return craftkit_spec.body_limit()


def _spec_webhook_timeout() -> float:
    """The seconds the contract gives a webhook receiver (notes A, B.18)."""
    import craftkit_spec

    return craftkit_spec.webhook_rules().timeout_seconds
