"""Backups of the whole database, and restoring one.

PostgreSQL goes through `pg_dump -Fc` and `pg_restore --clean --if-exists --single-transaction`; SQLite
through its online backup API, which copies a consistent snapshot while web and worker keep running.
Inquiry content is copied as stored, encrypted: reading it after a restore needs INQUIRY_ENCRYPTION_KEY.
The file is readable by its owner only (0600) from its first byte: it still holds readers' addresses.

A backup is written beside its target and renamed into place, so a failed backup never leaves a
truncated file under the name given. A restore checks the whole file before it changes anything.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import URL

from newsletter.core.extensions import db
from newsletter.models import Delivery, Inquiry, Issue, Subscriber

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"
# A backup of this product holds at least this table; anything without it is some other file.
MARKER_TABLE = Subscriber.__tablename__


class BackupError(RuntimeError):
    """The backup or restore could not be done; the message says why in plain words."""


class RestoreRefused(BackupError):
    """The database holds data and the caller did not confirm replacing it."""


@dataclass(frozen=True)
class Counts:
    """What a backup holds, as a therapist would check it."""

    readers: int
    issues: int
    deliveries: int
    inquiries: int

    def __str__(self) -> str:
        return (f"{self.readers} readers, {self.issues} issues, {self.deliveries} deliveries, "
                f"{self.inquiries} inquiries")


def counts() -> Counts:
    """Count readers, issues, deliveries and inquiries in the current database."""
    def count(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model))

    return Counts(count(Subscriber), count(Issue), count(Delivery), count(Inquiry))


def _dialect() -> str:
    return db.engine.url.get_backend_name()


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for pg_dump/pg_restore, and the environment carrying the password
    (never on the command line, where `ps` shows it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        raise BackupError(f"{args[0]} is not installed; it comes with PostgreSQL's client tools "
                          "(apt-get install postgresql-client).")
    return subprocess.run(args, env=env, capture_output=True, text=True)


def _release_connections() -> None:
    """Close this process's connections, so no open transaction holds a lock on the tables."""
    db.session.remove()
    db.engine.dispose()


def backup(path: str | os.PathLike) -> Counts:
    """Write the whole database to `path`; returns what it holds."""
    target = Path(path)
    if target.is_dir():
        raise BackupError(f"{target} is a folder; give a file name, like {target / 'newsletter.backup'}.")
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist.")
    held = counts()
    partial = target.with_name(target.name + ".partial")
    _owner_only_file(partial)
    try:
        if _dialect() == "postgresql":
            url, env = _libpq(db.engine.url)
            done = _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                         "--file", str(partial), "--dbname", url], env)
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        else:
            _sqlite_copy(_sqlite_path(), partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return held


def _owner_only_file(path: Path) -> None:
    """Create `path` empty with mode 0600 (whatever the umask), before pg_dump or SQLite writes into it."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_path() -> str:
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise BackupError("This database lives in memory only; there is nothing on disk to back up or restore.")
    return database


def _sqlite_copy(source: str | os.PathLike, target: str | os.PathLike, read_only_source: bool = False) -> None:
    """Copy one SQLite database into another with the online backup API (a consistent snapshot)."""
    src = (sqlite3.connect(f"file:{source}?mode=ro", uri=True) if read_only_source else sqlite3.connect(source))
    dest = sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        dest.close()
        src.close()


def check(path: str | os.PathLike) -> str:
    """Read the whole backup file and return its kind ("postgresql" or "sqlite"); BackupError if it is
    not a complete backup of this product for this kind of database."""
    source = Path(path)
    if not source.is_file():
        raise BackupError(f"There is no backup file at {source}.")
    with source.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(PG_CUSTOM_MAGIC):
        kind = "postgresql"
    elif head == SQLITE_MAGIC:
        kind = "sqlite"
    else:
        raise BackupError(f"{source} is not a backup made by `flask backup` (neither a PostgreSQL dump nor a "
                          "SQLite database). Nothing was changed.")
    if kind != _dialect():
        raise BackupError(f"{source} is a {_label(kind)} backup, but this installation uses {_label(_dialect())}. "
                          "Nothing was changed.")
    if kind == "postgresql":
        _check_pg_dump(source)
    else:
        _check_sqlite_file(source)
    return kind


def _label(kind: str) -> str:
    return {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(kind, kind)


def _damaged(source: Path, detail: str) -> BackupError:
    return BackupError(f"{source} is damaged or incomplete ({detail}). Nothing was changed; "
                       "use another backup.")


def _check_pg_dump(source: Path) -> None:
    listing = _run(["pg_restore", "--list", str(source)])
    if listing.returncode != 0:
        raise _damaged(source, listing.stderr.strip().splitlines()[-1] if listing.stderr.strip() else "unreadable")
    if f"TABLE public {MARKER_TABLE} " not in listing.stdout:
        raise BackupError(f"{source} is a PostgreSQL dump, but not of this newsletter (it has no readers table). "
                          "Nothing was changed.")
    # --list reads only the table of contents; converting the whole dump reads every data block.
    full = _run(["pg_restore", "--file", os.devnull, str(source)])
    if full.returncode != 0:
        raise _damaged(source, full.stderr.strip().splitlines()[-1] if full.stderr.strip() else "unreadable")


def _check_sqlite_file(source: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _damaged(source, str(exc)) from exc
    if verdict != "ok":
        raise _damaged(source, verdict)
    if MARKER_TABLE not in tables:
        raise BackupError(f"{source} is a SQLite database, but not of this newsletter (it has no readers table). "
                          "Nothing was changed.")


def is_empty() -> bool:
    """True when no table of ours holds a row (or there are no tables yet)."""
    present = set(inspect(db.engine).get_table_names())
    for table in db.metadata.sorted_tables:
        if table.name in present and db.session.execute(select(table).limit(1)).first() is not None:
            return False
    return True


def restore(path: str | os.PathLike, replace: bool = False) -> Counts:
    """Replace the database with the backup at `path`, after checking the whole file.

    Refuses (RestoreRefused) when the database holds data and `replace` is false. Returns what the
    restored database holds.
    """
    source = Path(path)
    kind = check(source)
    if not replace and not is_empty():
        raise RestoreRefused("This database already holds data, and a restore replaces all of it. "
                             "Stop the web app, workers and scheduler, then run the restore again with --yes.")
    _release_connections()
    if kind == "postgresql":
        url, env = _libpq(db.engine.url)
        done = _run(["pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                     "--no-owner", "--no-privileges", "--dbname", url, str(source)], env)
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed, and changed nothing (one transaction): {done.stderr.strip()}")
    else:
        _sqlite_copy(source, _sqlite_path(), read_only_source=True)
    return counts()
