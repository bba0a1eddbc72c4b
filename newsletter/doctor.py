"""`flask doctor` and /admin/doctor: is this installation healthy? One line per check, with what to do.

Settings (addresses, BASE_URL, the DKIM key), the sender domain's DNS (domain_check), the SMTP server, the
database, Redis, migrations, disk space, beat and the workers (newsletter/heartbeats.py), the mail waiting
to go out and the last backup. A check never raises: what it could not do is its answer.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from sqlalchemy import func, select, text

from newsletter import heartbeats
from newsletter.core.config import Settings
from newsletter.core.extensions import db
from newsletter.deliverability import domain_check
from newsletter.mail import compose, transports
from newsletter.models import OutgoingMail, utcnow
from newsletter.models.outbox import MAIL_PENDING

OK, WARN, FAIL = "ok", "warn", "fail"
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
MIN_FREE_BYTES = 500 * 1024 * 1024
MAIL_LATE_AFTER = timedelta(minutes=15)
BACKUP_STALE_AFTER = timedelta(hours=26)  # a nightly backup, with a little slack


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and what to do about it."""
    name: str
    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.status.upper():4} {self.name}: {self.message}"


def run(config: Settings) -> list[Check]:
    """Every check, in the order a deployer fixes things: settings, outside services, background parts."""
    return [_guard(name, check, config) for name, check in CHECKS]


def failed(report: list[Check]) -> bool:
    return any(check.status == FAIL for check in report)


def _guard(name: str, check: Callable[[Settings], tuple[str, str]], config: Settings) -> Check:
    try:
        status, message = check(config)
    except Exception as exc:  # a check that breaks says so on its own line; the others still run
        db.session.rollback()
        status, message = FAIL, f"could not be checked: {type(exc).__name__}: {exc}"
    return Check(name, status, message)


def _last(what: str, then: datetime | None) -> str:
    """"last heartbeat 3 min ago", or "no heartbeat ever"."""
    if then is None:
        return f"no {what} ever"
    minutes = int((utcnow() - then).total_seconds() // 60)
    if minutes < 120:
        return f"last {what} {minutes} min ago"
    return f"last {what} {minutes // 60} h ago" if minutes < 48 * 60 else f"last {what} {minutes // 1440} days ago"


def _unsigned(config: Settings) -> str:
    """Unsigned mail fails in production (Gmail and Yahoo want DKIM from bulk senders), warns elsewhere."""
    return FAIL if config.app_env == "production" else WARN


# -- settings

def check_addresses(config: Settings) -> tuple[str, str]:
    problems = []
    for name in ("MAIL_FROM", "PRACTICE_INBOX") + (("UNSUBSCRIBE_MAILTO",) if config.unsubscribe_mailto else ()):
        value = getattr(config, name.lower())
        try:
            compose.Mailbox.parse(value)
        except ValueError:
            problems.append(f"{name} ({value!r}) is not one e-mail address like 'Practice <hello@example.org>'")
    return (FAIL, "; ".join(problems) + ". Fix it in .env and restart.") if problems else \
        (OK, f"MAIL_FROM {config.mail_from}, PRACTICE_INBOX {config.practice_inbox}")


def check_base_url(config: Settings) -> tuple[str, str]:
    url = urlsplit(config.base_url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        return FAIL, f"BASE_URL {config.base_url!r} is not a web address like https://news.example.org."
    if config.app_env == "production" and (url.scheme != "https" or url.hostname in {"localhost", "127.0.0.1"}):
        return FAIL, (f"BASE_URL is {config.base_url}: in production it must be the https address readers "
                      "reach (unsubscribe and confirm links in every mail use it). Set BASE_URL=https://SITE_HOST.")
    return OK, config.base_url


def check_dkim_key(config: Settings) -> tuple[str, str]:
    if not config.dkim_enabled:
        return _unsigned(config), ("mail is not signed: set DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE (a PEM file "
                      "made with `openssl genrsa -out dkim.pem 2048`).")
    try:
        compose.dkim_sign(b"From: doctor@example.org\r\nSubject: test\r\n\r\nhello\r\n", config)
    except Exception as exc:  # dkimpy raises its own KeyFormatError, cryptography ValueError, open() OSError
        return FAIL, (f"DKIM_PRIVATE_KEY does not load ({type(exc).__name__}): mail would fail at signing. Put "
                      "the PEM in a file and set DKIM_PRIVATE_KEY_FILE to its path (a one-line .env can't hold it).")
    return OK, f"the key signs mail for {config.dkim_domain} (selector {config.dkim_selector})"


# -- the sender domain's DNS

def _dns(finding_name: str) -> Callable[[Settings], tuple[str, str]]:
    def check(config: Settings) -> tuple[str, str]:
        if finding_name == "DKIM" and not config.dkim_enabled:
            return _unsigned(config), "nothing to compare: no DKIM key is set (see the DKIM key line)."
        finding = domain_check.report(config).finding(finding_name)
        status = {domain_check.PASS: OK, domain_check.FAIL: FAIL}.get(finding.status, WARN)
        return status, finding.message + (f" {finding.publish}" if finding.publish else "")
    return check


# -- outside services

def check_smtp(config: Settings) -> tuple[str, str]:
    if not config.smtp_host:
        status = FAIL if config.app_env == "production" else WARN
        return status, f"SMTP_HOST is not set: mail is written to {config.outbox_dir}, nobody receives it."
    transport = transports.SMTPTransport(config)
    try:
        transport._connect().quit()  # greeting, STARTTLS or SSL, and the login, as sending does them
    except transports.TemporaryFailure as exc:
        return FAIL, (f"{config.smtp_host}:{config.smtp_port} did not accept us: {exc.args[-1]}. Check "
                      "SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_USERNAME and SMTP_PASSWORD.")
    login = f" and accepts the login of {config.smtp_username}" if config.smtp_username else ""
    return OK, f"{config.smtp_host}:{config.smtp_port} answers{login}"


def check_database(config: Settings) -> tuple[str, str]:
    db.session.execute(text("SELECT 1"))
    return OK, f"{db.engine.dialect.name} answers"


def check_redis(config: Settings) -> tuple[str, str]:
    if not config.redis_url:
        return OK, "not used: the queue is in a SQLite file (embedded mode)"
    import redis

    try:
        redis.Redis.from_url(config.redis_url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return FAIL, (f"Redis at REDIS_URL does not answer ({type(exc).__name__}): forms still work, but mail "
                      "waits for the sweeper. Start Redis (docker compose up -d redis) or fix REDIS_URL.")
    return OK, "Redis answers"


def check_migrations(config: Settings) -> tuple[str, str]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    heads = set(script.get_heads())
    if current != heads:
        return FAIL, (f"the database is at {', '.join(sorted(current)) or 'no revision'}, the code needs "
                      f"{', '.join(sorted(heads))}: run `.venv/bin/flask --app wsgi db upgrade` "
                      "(compose: the migrate service does it on `docker compose up -d`).")
    return OK, f"at {', '.join(sorted(heads))}"


def check_disk(config: Settings) -> tuple[str, str]:
    lines, status = [], OK
    for label, folder in (("instance/", Path(config.instance_path)),
                          ("outbox", Path(config.outbox_dir))):
        existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
        free = shutil.disk_usage(existing).free
        lines.append(f"{label} {free // 2**20} MB free")
        if free < MIN_FREE_BYTES:
            status = FAIL
    advice = "; free some space (old backups, logs) before the database can't write" if status == FAIL else ""
    return status, ", ".join(lines) + advice


# -- background parts

def check_beat(config: Settings) -> tuple[str, str]:
    seen = heartbeats.last_seen(heartbeats.BEAT)
    if seen is None or utcnow() - seen > heartbeats.SILENT_AFTER:
        return FAIL, (f"{_last('heartbeat', seen)}: scheduled issues, sweeps and reply-by reminders don't happen. "
                      "Start it: `python -m worker.beat` (compose: docker compose up -d beat).")
    return OK, _last("heartbeat", seen)


def check_workers(config: Settings) -> tuple[str, str]:
    seen = heartbeats.last_worker_seen()
    if seen is None or utcnow() - seen > heartbeats.SILENT_AFTER:
        return FAIL, (f"{_last('heartbeat from any worker', seen)}: no mail goes out. Start one: "
                      "`python -m worker` (compose: docker compose up -d worker).")
    return OK, _last("heartbeat from a worker", seen)


def check_queue(config: Settings) -> tuple[str, str]:
    pending, oldest = db.session.execute(
        select(func.count(), func.min(OutgoingMail.next_attempt_at)).where(OutgoingMail.status == MAIL_PENDING)
    ).one()
    if not pending:
        return OK, "no mail waiting"
    late = utcnow() - oldest > MAIL_LATE_AFTER
    message = f"{pending} mail waiting, the oldest due since {oldest:%Y-%m-%d %H:%M} UTC"
    return (FAIL, message + ": see Outbox in the admin for the server's answer, and the worker check above.") \
        if late else (OK, message)


def check_backup(config: Settings) -> tuple[str, str]:
    seen = heartbeats.last_seen(heartbeats.BACKUP)
    if seen is None or utcnow() - seen > BACKUP_STALE_AFTER:
        return FAIL, (f"{_last('backup', seen)}: run `.venv/bin/flask --app wsgi backup PATH` nightly "
                      "(compose: the backup service does it); see docs/reliability.md.")
    return OK, _last("backup", seen)


CHECKS: list[tuple[str, Callable[[Settings], tuple[str, str]]]] = [
    ("Addresses", check_addresses),
    ("Base URL", check_base_url),
    ("DKIM key", check_dkim_key),
    ("DKIM record", _dns("DKIM")),
    ("SPF", _dns("SPF")),
    ("DMARC", _dns("DMARC")),
    ("SMTP", check_smtp),
    ("Database", check_database),
    ("Redis", check_redis),
    ("Migrations", check_migrations),
    ("Disk", check_disk),
    ("Beat", check_beat),
    ("Workers", check_workers),
    ("Mail queue", check_queue),
    ("Backup", check_backup),
]
