"""Fixtures for the fault suite: the processes of production (gunicorn, Celery beat) beside the
root conftest's workers, Redis, SMTP server and databases.

The cases with processes run on PostgreSQL only, the production database; the in-process cases run
on both.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import BeatProcess, SMTPServer, free_port, process_fixture


@pytest.fixture
def production_database(settings):
    """Skip on SQLite: these cases reproduce the production stack."""
    if not settings["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("the fault suite's process cases run on PostgreSQL, as production does")
    return settings


start_beat = process_fixture(BeatProcess, "beat",
                             "Start beat processes (`python -m worker.beat`; all stopped after the test); `env` overrides "
                             "settings, `command=CELERY_BEAT` starts `celery -A worker beat`.")


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


class PostgresServer:
    """A PostgreSQL server of the test's own (Debian's initdb/pg_ctl, run as the postgres user when
    the suite runs as root), so a test may restart it; never the shared one."""

    def __init__(self, workdir: Path) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            pytest.skip("PostgreSQL's server programs are not installed (apt-get install postgresql)")
        self.bin = found[-1].parent
        self.data = workdir / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:  # the server refuses to run as root; its folder must be the postgres user's
            shutil.chown(workdir, "postgres", "postgres")
        self._run("initdb", "--auth=trust", "--username=postgres", "--no-sync", "-D", str(self.data))

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self.as_owner, str(self.bin / program), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-l", str(self.data / "server.log"), *args)

    def start(self) -> None:
        self._pg_ctl("start", "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off")

    def restart(self) -> None:
        """A fast restart: every session is cut, committed work is kept."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")


@pytest.fixture
def own_postgres():
    # Not under tmp_path: pytest's folders are private to root, and the server runs as postgres.
    workdir = Path(tempfile.mkdtemp(prefix="faults-postgres-"))
    server = PostgresServer(workdir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
