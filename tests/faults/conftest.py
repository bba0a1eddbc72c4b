"""Fixtures for the fault suite: the processes of production (gunicorn, Celery beat) beside the
root conftest's workers, Redis, SMTP server and databases.

The cases with processes run on PostgreSQL only, the production database; the in-process cases run
on both.
"""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import BeatProcess, GunicornProcess, SMTPServer


@pytest.fixture
def production_database(settings):
    """Skip on SQLite: these cases reproduce the production stack."""
    if not settings["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("the fault suite's process cases run on PostgreSQL, as production does")
    return settings


@pytest.fixture
def start_beat(settings, _schema, tmp_path):
    """Start `celery beat` processes (all stopped after the test); `env` overrides settings."""
    started: list[BeatProcess] = []

    def start(env: dict[str, str] | None = None) -> BeatProcess:
        name = f"beat{len(started)}-{uuid.uuid4().hex[:6]}"
        process = BeatProcess({**settings, **(env or {})}, tmp_path / f"{name}.log", name=name).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_gunicorn(settings, _schema, tmp_path):
    """Serve the app with a real gunicorn (stopped after the test); `env` overrides settings."""
    started: list[GunicornProcess] = []

    def start(env: dict[str, str] | None = None) -> GunicornProcess:
        name = f"web{len(started)}"
        process = GunicornProcess({**settings, **(env or {})}, tmp_path / f"{name}.log", name=name).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def own_smtp_server():
    """An SMTP server of this test's own, which it may stop and start again."""
    server = SMTPServer().start()
    yield server
    try:
        server.stop()
    except Exception:  # noqa: BLE001 - already stopped by the test
        pass


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs: a folder that fills up. Needs root (mount); the suite runs as root in CI."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    yield Path(folder)
    subprocess.run(["umount", "--lazy", str(folder)], check=False)
