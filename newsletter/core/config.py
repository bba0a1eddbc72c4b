"""Configuration from environment variables, with the embedded defaults of SPEC.md.

`load(environ, instance_path)` reads the raw settings; `finalize(settings)` derives the
Flask, SQLAlchemy and Celery keys from them, so a test can override a raw setting
(say `DATABASE_URL`) and get every derived key right.
"""
from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from datetime import date
from email.utils import getaddresses
from pathlib import Path
from typing import Mapping

from kombu import Exchange, Queue


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet  # only here: see newsletter/crypto.py

    return Fernet.generate_key().decode()


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


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _date(environ: Mapping[str, str], name: str) -> date | None:
    raw = environ.get(name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be a date like 2026-12-01, got {raw!r}") from exc


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


def _refuse_default_secrets(cfg: dict) -> None:
    """Production never runs on a database password or SECRET_KEY copied from an example."""
    from sqlalchemy.engine import make_url

    url = cfg["DATABASE_URL"]
    password = make_url(url).password if url.startswith(("postgres://", "postgresql")) else None
    if password in DEFAULT_SECRETS:
        raise ConfigError("The database password is a default (or empty). In production set POSTGRES_PASSWORD_FILE "
                          "(compose: secrets/postgres_password) to a long random password.")
    if cfg["SECRET_KEY"] in DEFAULT_SECRETS or len(cfg["SECRET_KEY"]) < 16:
        raise ConfigError("SECRET_KEY is a default or shorter than 16 characters. Generate one with: "
                          "python -c 'import secrets; print(secrets.token_urlsafe(48))'")


def load(environ: Mapping[str, str], instance_path: str) -> dict:
    """Raw settings: every environment variable the product reads, with its default."""
    e = _with_secret_files(environ)
    return {
        "APP_ENV": e.get("APP_ENV", "development"),
        "SECRET_KEY": e.get("SECRET_KEY", ""),
        "DATABASE_URL": e.get("DATABASE_URL", ""),
        "REDIS_URL": e.get("REDIS_URL", ""),
        "SMTP_HOST": e.get("SMTP_HOST", ""),
        "SMTP_PORT": _int(e, "SMTP_PORT", 0),
        "SMTP_USERNAME": e.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": e.get("SMTP_PASSWORD", ""),
        "SMTP_SECURITY": e.get("SMTP_SECURITY", "none").lower(),
        "SMTP_TIMEOUT": _float(e, "SMTP_TIMEOUT", 30.0),
        "MAIL_FROM": e.get("MAIL_FROM", "Inner Calm Counseling <newsletter@localhost>"),
        "PRACTICE_INBOX": e.get("PRACTICE_INBOX", "practice@localhost"),
        "BASE_URL": e.get("BASE_URL", "http://localhost:5000").rstrip("/"),
        "LIST_ID": e.get("LIST_ID", ""),
        "UNSUBSCRIBE_MAILTO": e.get("UNSUBSCRIBE_MAILTO", ""),
        "SEND_RATE_PER_SECOND": _float(e, "SEND_RATE_PER_SECOND", 10.0),
        "SEND_RATE_PER_HOUR": _int(e, "SEND_RATE_PER_HOUR", 0),
        "SEND_RATE_PER_DAY": _int(e, "SEND_RATE_PER_DAY", 0),
        "SEND_BATCH_SIZE": _int(e, "SEND_BATCH_SIZE", 0),  # sending: 0 = 30 s of sending at the rate
        "SEND_MAX_CONSECUTIVE_FAILURES": _int(e, "SEND_MAX_CONSECUTIVE_FAILURES", 20),
        # Sending: a warm-up plan for a new sender domain (newsletter/warmup.py). 0 messages on day 1 = off.
        "SEND_WARMUP_START": _int(e, "SEND_WARMUP_START", 0),
        "SEND_WARMUP_DAYS": _int(e, "SEND_WARMUP_DAYS", 14),
        "SEND_WARMUP_FROM": _date(e, "SEND_WARMUP_FROM"),  # default: the day the first issue was sent
        "DKIM_DOMAIN": e.get("DKIM_DOMAIN", ""),
        "DKIM_SELECTOR": e.get("DKIM_SELECTOR", ""),
        "DKIM_PRIVATE_KEY": e.get("DKIM_PRIVATE_KEY", ""),
        "INQUIRY_ENCRYPTION_KEY": e.get("INQUIRY_ENCRYPTION_KEY", ""),
        "INQUIRY_FORWARD_MODE": e.get("INQUIRY_FORWARD_MODE", "full").lower(),
        "INQUIRY_RETENTION_DAYS": _int(e, "INQUIRY_RETENTION_DAYS", 365),
        "INQUIRY_DIGEST_AFTER_HOURS": _int(e, "INQUIRY_DIGEST_AFTER_HOURS", 24),
        "INQUIRY_REPLY_BUSINESS_DAYS": _int(e, "INQUIRY_REPLY_BUSINESS_DAYS", 2),
        "CONFIRM_TOKEN_MAX_AGE_HOURS": _int(e, "CONFIRM_TOKEN_MAX_AGE_HOURS", 48),
        "PRACTICE_TIMEZONE": e.get("PRACTICE_TIMEZONE", "America/Denver"),
        # Welcome series: later steps go out at this hour of the day, in the practice's timezone.
        "SERIES_SEND_HOUR": _int(e, "SERIES_SEND_HOUR", 9),
        "EMBED_ALLOWED_ORIGINS": e.get("EMBED_ALLOWED_ORIGINS", ""),
        "OUTBOX_DIR": e.get("OUTBOX_DIR", str(Path(instance_path) / "outbox")),
        "RATELIMIT_ENABLED": _flag(e.get("RATELIMIT_ENABLED"), True),
        # How many reverse proxies (nginx, Caddy...) sit in front of gunicorn and set X-Forwarded-*.
        "PROXY_FIX_HOPS": _int(e, "PROXY_FIX_HOPS", 0),
        # Admin sign-in (trust): idle timeout, absolute session lifetime, lockout across IPs.
        "ADMIN_IDLE_MINUTES": _int(e, "ADMIN_IDLE_MINUTES", 30),
        "ADMIN_SESSION_HOURS": _int(e, "ADMIN_SESSION_HOURS", 12),
        "ADMIN_LOCKOUT_ATTEMPTS": _int(e, "ADMIN_LOCKOUT_ATTEMPTS", 10),
        "ADMIN_LOCKOUT_MINUTES": _int(e, "ADMIN_LOCKOUT_MINUTES", 30),
        # Deliverability, sender-domain check: the DNS server (host:port) it asks; empty for the system's.
        "DNS_RESOLVER": e.get("DNS_RESOLVER", ""),
        # Bounces and complaints (newsletter/bounces.py, newsletter/webhooks.py, docs/deliverability.md).
        "BOUNCE_SOFT_LIMIT": _int(e, "BOUNCE_SOFT_LIMIT", 3),
        "BOUNCE_SOFT_WINDOW_DAYS": _int(e, "BOUNCE_SOFT_WINDOW_DAYS", 30),
        "BOUNCE_VERP": _flag(e.get("BOUNCE_VERP"), False),
        "BOUNCE_DOMAIN": e.get("BOUNCE_DOMAIN", "").strip().lower(),
        "COMPLAINT_REPORTERS": e.get("COMPLAINT_REPORTERS", ""),
        "MAILGUN_WEBHOOK_SIGNING_KEY": e.get("MAILGUN_WEBHOOK_SIGNING_KEY", ""),
        "WEBHOOK_USERNAME": e.get("WEBHOOK_USERNAME", ""),
        "WEBHOOK_PASSWORD": e.get("WEBHOOK_PASSWORD", ""),
        "SES_SNS_TOPIC_ARNS": e.get("SES_SNS_TOPIC_ARNS", ""),
        "SENDGRID_WEBHOOK_PUBLIC_KEY": e.get("SENDGRID_WEBHOOK_PUBLIC_KEY", ""),
    }


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


def _celery(settings: dict, instance_path: str) -> dict:
    redis_url = settings["REDIS_URL"]
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
        # a booking invite, a lockout notice: newsletter/mail/outbox.py LANES), then other transactional mail,
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


def finalize(settings: dict, instance_path: str) -> dict:
    """Check the raw settings and derive Flask, SQLAlchemy and Celery keys."""
    cfg = dict(settings)
    production = cfg["APP_ENV"] == "production"
    if not cfg["SECRET_KEY"]:
        if production:
            raise ConfigError(
                "SECRET_KEY is not set. In production it must come from the environment, so that "
                "sessions and reader links survive a restart. Generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        cfg["SECRET_KEY"] = _instance_secret(instance_path, "secret_key", lambda: secrets.token_urlsafe(48))
    if not cfg["INQUIRY_ENCRYPTION_KEY"]:
        if production:
            raise ConfigError(
                "INQUIRY_ENCRYPTION_KEY is not set. Inquiries are encrypted at rest; in production the key "
                f"must come from the environment. Generate one with: {FERNET_KEY_HELP}"
            )
        cfg["INQUIRY_ENCRYPTION_KEY"] = _instance_secret(instance_path, "inquiry_encryption_key", _new_fernet_key)
    encryption_keys(cfg["INQUIRY_ENCRYPTION_KEY"])
    if production:
        _refuse_default_secrets(cfg)
    if production and not cfg["SMTP_HOST"]:
        raise ConfigError(
            "SMTP_HOST is not set. In production mail must go to a real SMTP server; without one every "
            "confirmation, inquiry forward and issue would only be written to files nobody reads."
        )
    if cfg["SMTP_SECURITY"] not in {"none", "starttls", "ssl"}:
        raise ConfigError(f"SMTP_SECURITY must be none, starttls or ssl, got {cfg['SMTP_SECURITY']!r}")
    if cfg["INQUIRY_FORWARD_MODE"] not in {"full", "notice"}:
        raise ConfigError(f"INQUIRY_FORWARD_MODE must be full or notice, got {cfg['INQUIRY_FORWARD_MODE']!r}")
    for name in ("MAIL_FROM", "PRACTICE_INBOX"):
        found = getaddresses([cfg[name]])
        if len(found) != 1 or "@" not in found[0][1] or any(ch in cfg[name] for ch in "\r\n\0"):
            raise ConfigError(f"{name} must be exactly one e-mail address, like 'Practice <hello@example.org>'; "
                              f"got {cfg[name]!r}")
    if production and cfg["BASE_URL"].startswith("http://") and not _is_local(cfg["BASE_URL"]):
        raise ConfigError("BASE_URL must be https in production: unsubscribe links in mail use it.")
    if cfg["DNS_RESOLVER"]:
        try:
            dns_server(cfg["DNS_RESOLVER"])
        except ValueError:
            raise ConfigError("DNS_RESOLVER must be a DNS server's IP address with an optional port, like "
                              f"127.0.0.1:5353 or [::1]:53; got {cfg['DNS_RESOLVER']!r}") from None
    if not cfg["SMTP_PORT"]:
        cfg["SMTP_PORT"] = {"ssl": 465, "starttls": 587}.get(cfg["SMTP_SECURITY"], 25)
    if not cfg["LIST_ID"]:
        host = cfg["BASE_URL"].split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
        cfg["LIST_ID"] = f"newsletter.{host}"
    cfg["SQLALCHEMY_DATABASE_URI"] = _database_uri(cfg["DATABASE_URL"], instance_path)
    # Trust: SQL parameters (addresses, tokens) never appear in error messages or logs.
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "hide_parameters": True}
    cfg["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"] or "memory://"
    cfg["RATELIMIT_HEADERS_ENABLED"] = True
    # Redis down must not turn a signup away: limits fall back to each process's memory meanwhile.
    cfg["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True
    cfg["RATELIMIT_SWALLOW_ERRORS"] = True
    cfg["CELERY"] = _celery(cfg, instance_path)
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    cfg["SESSION_COOKIE_SECURE"] = production
    cfg["REMEMBER_COOKIE_SECURE"] = production
    cfg["MAX_CONTENT_LENGTH"] = 5 * 1024 * 1024
    return cfg
