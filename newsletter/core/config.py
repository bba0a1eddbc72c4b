"""Configuration from environment variables, with the embedded defaults of SPEC.md.

`load(environ, instance_path, overrides)` builds the one typed `Settings` object and checks it, so a bad
value stops the start with one clear line; `flask_config(settings)` derives the keys Flask, SQLAlchemy,
Flask-Limiter and Celery read. create_app does both once; services read `settings()`.
"""
from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import typing
from dataclasses import dataclass, field, fields, replace
from datetime import date
from email.utils import getaddresses
from pathlib import Path
from typing import Mapping

from kombu import Exchange, Queue


def _new_fernet_key() -> str:
    """What Fernet.generate_key() returns, without importing cryptography into every process's first start."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class ConfigError(RuntimeError):
    """Start-up refused: the message says which setting is missing and why."""


FERNET_KEY_HELP = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


def encryption_keys(setting: str) -> list[str]:
    """INQUIRY_ENCRYPTION_KEY's keys, newest (the one that encrypts) first: one Fernet key, or several
    separated by commas while old data is re-encrypted (`flask rotate-key`). ConfigError names a bad one."""
    keys = [key.strip() for key in setting.split(",") if key.strip()]
    if not keys:
        raise ConfigError(f"INQUIRY_ENCRYPTION_KEY holds no key. Generate one with: {FERNET_KEY_HELP}")
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (ValueError, UnicodeEncodeError):
            valid = False
        if not valid:
            raise ConfigError(f"INQUIRY_ENCRYPTION_KEY: key {position} of {len(keys)} is not a Fernet key "
                              f"(44 characters of URL-safe base64). Generate one with: {FERNET_KEY_HELP}")
    return keys


def _instance_secret(instance_path: str, filename: str, generate) -> str:
    """Read a development secret from instance/, creating it once (mode 600)."""
    path = Path(instance_path) / filename
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


# Secrets that may come from a file instead (Docker secrets): NAME_FILE=/run/secrets/x sets NAME to its contents.
SECRET_FILE_SETTINGS = ("SECRET_KEY", "INQUIRY_ENCRYPTION_KEY", "DKIM_PRIVATE_KEY", "SMTP_PASSWORD", "POSTGRES_PASSWORD",
                        "MAILGUN_WEBHOOK_SIGNING_KEY", "WEBHOOK_PASSWORD")
# Values that ship in examples: production refuses them.
DEFAULT_SECRETS = {"", "newsletter", "change-me", "changeme", "secret", "password", "..."}


def _with_secret_files(environ: Mapping[str, str]) -> dict:
    """The environment with every NAME_FILE read into NAME, and POSTGRES_PASSWORD put into a DATABASE_URL
    that has none (compose passes the password as a file, apart from the URL)."""
    env = dict(environ)
    for name in SECRET_FILE_SETTINGS:
        path = env.get(f"{name}_FILE", "")
        if not path:
            continue
        if env.get(name):
            raise ConfigError(f"Both {name} and {name}_FILE are set; keep one.")
        try:
            env[name] = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE is {path!r}, which cannot be read: {exc.strerror}.") from None
    if env.get("POSTGRES_PASSWORD") and env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        from sqlalchemy.engine import make_url

        url = make_url(env["DATABASE_URL"])
        if url.password is None:
            env["DATABASE_URL"] = url.set(password=env["POSTGRES_PASSWORD"]).render_as_string(hide_password=False)
    return env


def _refuse_default_secrets(loaded: Settings) -> None:
    """Production never runs on a database password or SECRET_KEY copied from an example."""
    from sqlalchemy.engine import make_url

    url = loaded.database_url
    password = make_url(url).password if url.startswith(("postgres://", "postgresql")) else None
    if password in DEFAULT_SECRETS:
        raise ConfigError("The database password is a default (or empty). In production set POSTGRES_PASSWORD_FILE "
                          "(compose: secrets/postgres_password) to a long random password.")
    if loaded.secret_key in DEFAULT_SECRETS or len(loaded.secret_key) < 16:
        raise ConfigError("SECRET_KEY is a default or shorter than 16 characters. Generate one with: "
                          "python -c 'import secrets; print(secrets.token_urlsafe(48))'")


@dataclass(frozen=True)
class Settings:
    """Every product setting, typed: the environment variable of the same name in capitals (SPEC.md),
    read once by `load` when the app starts. Services read it through `settings()`. Secrets stay out of repr."""

    instance_path: str = ""
    app_env: str = "development"
    secret_key: str = field(default="", repr=False)  # empty in development: one is made once in instance/
    database_url: str = field(default="", repr=False)
    redis_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 0  # 0: the port of SMTP_SECURITY (25, 587 or 465)
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_security: str = "none"
    smtp_timeout: float = 30.0
    mail_from: str = "Inner Calm Counseling <newsletter@localhost>"
    practice_inbox: str = "practice@localhost"
    base_url: str = "http://localhost:5000"
    list_id: str = ""  # empty: newsletter.<the host of BASE_URL>
    unsubscribe_mailto: str = ""
    send_rate_per_second: float = 10.0
    send_rate_per_hour: int = 0
    send_rate_per_day: int = 0
    send_batch_size: int = 0  # 0 = 30 s of sending at the rate
    send_max_consecutive_failures: int = 20
    # A warm-up plan for a new sender domain (sending/warmup.py). 0 messages on day 1 = off.
    send_warmup_start: int = 0
    send_warmup_days: int = 14
    send_warmup_from: date | None = None  # None: the day the first issue was sent
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_private_key: str = field(default="", repr=False)  # PEM text, or the path of a PEM file
    inquiry_encryption_key: str = field(default="", repr=False)  # empty in development: one is made once in instance/
    inquiry_forward_mode: str = "full"
    inquiry_retention_days: int = 365
    inquiry_digest_after_hours: int = 24
    inquiry_reply_business_days: int = 2
    confirm_token_max_age_hours: int = 48
    practice_timezone: str = "America/Denver"
    series_send_hour: int = 9  # welcome series: later steps go out at this hour, practice time
    embed_allowed_origins: str = ""
    outbox_dir: str = ""  # empty: instance/outbox
    ratelimit_enabled: bool = True
    proxy_fix_hops: int = 0  # how many reverse proxies set X-Forwarded-*
    # Admin sign-in: idle timeout, absolute session lifetime, lockout across IPs.
    admin_idle_minutes: int = 30
    admin_session_hours: int = 12
    admin_lockout_attempts: int = 10
    admin_lockout_minutes: int = 30
    dns_resolver: str = ""  # the DNS server (host:port) the sender-domain check asks; empty for the system's
    # Bounces and complaints (deliverability/, docs/deliverability.md).
    bounce_soft_limit: int = 3
    bounce_soft_window_days: int = 30
    bounce_verp: bool = False
    bounce_domain: str = ""
    complaint_reporters: str = ""
    mailgun_webhook_signing_key: str = field(default="", repr=False)
    webhook_username: str = ""
    webhook_password: str = field(default="", repr=False)
    ses_sns_topic_arns: str = ""
    sendgrid_webhook_public_key: str = ""
    sns_url_pattern: str = ""  # tests only: where SNS signing certificates may come from (empty: AWS)

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def dkim_enabled(self) -> bool:
        """Mail is signed when the domain, the selector and the key are all set."""
        return bool(self.dkim_domain and self.dkim_selector and self.dkim_private_key)


def settings() -> Settings:
    """The running app's settings (built once by create_app)."""
    from flask import current_app

    return current_app.extensions["settings"]


def _whole(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _day(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a date like 2026-12-01, got {raw!r}") from None


def _flag(name: str, raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


_PARSERS = {int: _whole, float: _number, bool: _flag, date | None: _day, str: lambda name, raw: raw}
_FIELD_TYPES = typing.get_type_hints(Settings)
# The settings' names as in the environment; create_app gives every other override to Flask.
SETTING_NAMES = frozenset(item.name.upper() for item in fields(Settings))
# Spelling that does not matter: "STARTTLS" is starttls, a trailing slash on BASE_URL is none.
_TIDY = {"smtp_security": str.lower, "inquiry_forward_mode": str.lower, "base_url": lambda url: url.rstrip("/"),
         "bounce_domain": lambda domain: domain.strip().lower()}


def load(environ: Mapping[str, str], instance_path: str, overrides: Mapping | None = None) -> Settings:
    """The settings from the environment, with `overrides` (capitalised names, as in the environment) on top,
    checked: a bad value is a ConfigError that says which and why."""
    env = {**_with_secret_files(environ), **(overrides or {})}
    values = {}
    for item in fields(Settings)[1:]:
        raw = env.get(item.name.upper())
        if raw is None or raw == "":
            continue
        value = _PARSERS[_FIELD_TYPES[item.name]](item.name.upper(), raw) if isinstance(raw, str) else raw
        values[item.name] = _TIDY.get(item.name, lambda same: same)(value)
    loaded = Settings(instance_path=instance_path, **values)
    check(loaded)
    return _completed(loaded)


def _is_local(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    return host in {"localhost", "127.0.0.1"}


def dns_server(value: str) -> tuple[str, int]:
    """DNS_RESOLVER as (IP address, port): "127.0.0.1", "127.0.0.1:5353" or "[::1]:5353"; ValueError otherwise."""
    host, port = value.strip(), "53"
    if host.startswith("["):
        host, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not [address]:port")
        port = rest[1:] or port
    elif host.count(":") == 1:
        host, port = host.split(":")
    ipaddress.ip_address(host)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is not a port")
    return host, int(port)


def _database_uri(url: str, instance_path: str) -> str:
    if not url:
        return f"sqlite:///{Path(instance_path) / 'newsletter.sqlite'}"
    # Hosting providers hand out postgres:// URLs; SQLAlchemy wants the psycopg 3 driver named.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _celery(settings: Settings, instance_path: str) -> dict:
    redis_url = settings.redis_url
    broker = redis_url or f"sqla+sqlite:///{Path(instance_path) / 'broker.sqlite'}"
    return {
        "broker_url": broker,
        # Results are never read: the database is the record of what happened.
        "task_ignore_result": True,
        "result_backend": None,
        # A task is acknowledged after it ran, and a worker killed mid-task gives it back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        # Queues in the order a worker takes them (Redis: `queue_order_strategy` "priority" reads them in
        # this order every time instead of round-robin): the practice's own mail first (a forward, a reply,
        # a booking invite, a lockout notice: newsletter/mail/outgoing.py LANES), then other transactional mail,
        # then an issue's batches. The embedded broker (kombu's SQLAlchemy transport) takes them round-robin:
        # practice mail still waits for at most one task of each other queue, never behind their backlog.
        # A plain `celery -A worker worker` consumes all three.
        "broker_transport_options": (
            {"visibility_timeout": 3600, "socket_connect_timeout": 3, "socket_timeout": 10,
             "queue_order_strategy": "priority"}
            if redis_url else {}
        ),
        "task_queues": (
            Queue("practice", Exchange("practice"), routing_key="practice"),
            Queue("mail", Exchange("mail"), routing_key="mail"),
            Queue("bulk", Exchange("bulk"), routing_key="bulk"),
        ),
        "task_default_queue": "bulk",
        "task_routes": {
            "newsletter.tasks.*_outgoing_mail": {"queue": "mail"},  # send_outgoing_mail: per message, see enqueue_mail
            "newsletter.tasks.apply_signup": {"queue": "mail"},
            "newsletter.tasks.queue_inquiry_mails": {"queue": "practice"},  # writes the forward
            "newsletter.tasks.dispatch_due_issues": {"queue": "bulk"},
            "newsletter.tasks.send_batch": {"queue": "bulk"},
            "newsletter.tasks.sweep_deliveries": {"queue": "bulk"},
        },
        "beat_schedule_filename": str(Path(instance_path) / "celerybeat-schedule"),
        "timezone": "UTC",
    }


# The web only hands tasks to the broker, after the response: with Redis down it must give up at once
# (no retries, a short connect timeout) rather than hold a web worker (newsletter.tasks.enqueue).
HAND_OFF_FAIL_FAST = {"max_retries": 0, "socket_connect_timeout": 1, "socket_timeout": 2}


def _completed(loaded: Settings) -> Settings:
    """Fill in what an empty setting means: development secrets kept in instance/, the SMTP port, List-Id, outbox."""
    instance = loaded.instance_path
    host = loaded.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    return replace(
        loaded,
        secret_key=loaded.secret_key or _instance_secret(instance, "secret_key", lambda: secrets.token_urlsafe(48)),
        inquiry_encryption_key=loaded.inquiry_encryption_key or _instance_secret(instance, "inquiry_encryption_key",
                                                                                 _new_fernet_key),
        smtp_port=loaded.smtp_port or {"ssl": 465, "starttls": 587}.get(loaded.smtp_security, 25),
        list_id=loaded.list_id or f"newsletter.{host}",
        outbox_dir=loaded.outbox_dir or str(Path(instance) / "outbox"),
    )


def check(loaded: Settings) -> None:
    """Refuse to start on a setting that is wrong, or missing in production: one ConfigError, one clear line."""
    if loaded.production:
        _check_production(loaded)
    if loaded.inquiry_encryption_key:
        encryption_keys(loaded.inquiry_encryption_key)
    if loaded.smtp_security not in {"none", "starttls", "ssl"}:
        raise ConfigError(f"SMTP_SECURITY must be none, starttls or ssl, got {loaded.smtp_security!r}")
    if loaded.inquiry_forward_mode not in {"full", "notice"}:
        raise ConfigError(f"INQUIRY_FORWARD_MODE must be full or notice, got {loaded.inquiry_forward_mode!r}")
    for name in ("MAIL_FROM", "PRACTICE_INBOX") + (("UNSUBSCRIBE_MAILTO",) if loaded.unsubscribe_mailto else ()):
        _check_address(name, getattr(loaded, name.lower()))
    if loaded.dns_resolver:
        try:
            dns_server(loaded.dns_resolver)
        except ValueError:
            raise ConfigError("DNS_RESOLVER must be a DNS server's IP address with an optional port, like "
                              f"127.0.0.1:5353 or [::1]:53; got {loaded.dns_resolver!r}") from None
    if loaded.dkim_enabled:
        _check_dkim_key(loaded.dkim_private_key)


def _check_production(loaded: Settings) -> None:
    """Production needs real secrets and a real SMTP server, and links in mail that are https."""
    if not loaded.secret_key:
        raise ConfigError("SECRET_KEY is not set. In production it must come from the environment, so that sessions "
                          "and reader links survive a restart. Generate one with: "
                          "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    if not loaded.inquiry_encryption_key:
        raise ConfigError("INQUIRY_ENCRYPTION_KEY is not set. Inquiries are encrypted at rest; in production the key "
                          f"must come from the environment. Generate one with: {FERNET_KEY_HELP}")
    _refuse_default_secrets(loaded)
    if not loaded.smtp_host:
        raise ConfigError("SMTP_HOST is not set. In production mail must go to a real SMTP server; without one every "
                          "confirmation, inquiry forward and issue would only be written to files nobody reads.")
    if loaded.base_url.startswith("http://") and not _is_local(loaded.base_url):
        raise ConfigError("BASE_URL must be https in production: unsubscribe links in mail use it.")


def _check_address(name: str, value: str) -> None:
    """One address, a name optional: 'Practice <hello@example.org>' (mail/addresses.py checks what readers type)."""
    found = getaddresses([value])
    local, _, domain = found[0][1].rpartition("@") if len(found) == 1 else ("", "", "")
    if not local or not domain or any(ch in value for ch in "\r\n\0"):
        raise ConfigError(f"{name} must be exactly one e-mail address, like 'Practice <hello@example.org>'; "
                          f"got {value!r}")


def dkim_key_text(value: str) -> str:
    """DKIM_PRIVATE_KEY's PEM text: the setting itself, or the file it names."""
    return value if value.lstrip().startswith("-----") else Path(value).read_text()


def _check_dkim_key(value: str) -> None:
    """Read the DKIM key as the signer will (dkimpy), so a bad one stops the start, not the first mail."""
    import dkim.crypto

    try:
        dkim.crypto.parse_pem_private_key(dkim_key_text(value).encode())
    except OSError as exc:
        raise ConfigError(f"DKIM_PRIVATE_KEY names a file that cannot be read: {exc.strerror}.") from None
    except (dkim.crypto.UnparsableKeyError, ValueError):
        raise ConfigError("DKIM_PRIVATE_KEY is not a private key in PEM form (-----BEGIN ... PRIVATE KEY-----, one "
                          "line per line: a key pasted with \\n in it is not); mail could not be signed.") from None


def flask_config(loaded: Settings) -> dict:
    """The keys Flask and its extensions read (sessions, SQLAlchemy, Flask-Limiter, Celery), from the settings."""
    production = loaded.production
    return {
        "SECRET_KEY": loaded.secret_key,
        "SQLALCHEMY_DATABASE_URI": _database_uri(loaded.database_url, loaded.instance_path),
        # Trust: SQL parameters (addresses, tokens) never appear in error messages or logs.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "RATELIMIT_ENABLED": loaded.ratelimit_enabled,
        "RATELIMIT_STORAGE_URI": loaded.redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down must not turn a signup away: limits fall back to each process's memory meanwhile.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "CELERY": _celery(loaded, loaded.instance_path),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
    }
