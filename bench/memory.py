"""Memory of the embedded stack (scripts/run.sh: web, and the worker with beat inside), idle; or, with
--production, of the production set (PostgreSQL, Redis, gunicorn, a worker, beat) idle and sending 10,000 mails.

    .venv/bin/python bench/memory.py              # settle for 30 s, then measure
    .venv/bin/python bench/memory.py --settle 60
    .venv/bin/python bench/memory.py --production [--readers 10000]

Starts `honcho --procfile Procfile.dev start` on the embedded defaults in a temporary instance
folder (SQLite, kombu's SQLite broker, the outbox folder: nothing configured), waits for it to
settle, and prints each process's PSS (proportional set size: shared pages counted in part, from
/proc/PID/smaps_rollup) and RSS, and the stack's total PSS, the figure that says what it costs
a small server. Honcho itself is not counted: it only runs the stack in a terminal.

--production starts its own of everything, as docker-compose.yml runs them: a PostgreSQL (Debian's
/usr/lib/postgresql/*/bin, default settings, run as the postgres user when started by root), a Redis, gunicorn
with gunicorn.conf.py (WEB_CONCURRENCY, default 1 process of 4 threads as in compose), one `python -m worker
--pool threads --concurrency 2` and `python -m worker.beat`, with Postfix's smtp-sink as the SMTP server
(bench/send.py's helpers). It prints each part's RSS and PSS (summed over its processes) idle, then the peak of
the sum while beat dispatches an issue to N readers and the worker sends it. RSS counts PostgreSQL's shared
buffers once per backend, so the RSS sum overstates what the set costs; PSS does not.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import stop_all  # bench/common.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    """Every descendant of pid (a process that ends while it is read, as a PostgreSQL backend may, is left out)."""
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *children(int(child))]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait before measuring")
    parser.add_argument("--production", action="store_true", help="the production set, idle and sending")
    parser.add_argument("--readers", type=int, default=10_000, help="--production: readers the issue goes to")
    args = parser.parse_args()
    if args.production:
        production(args.settle, args.readers)
        return
    workdir = Path(tempfile.mkdtemp(prefix="newsletter-memory-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SMTP_HOST", "OUTBOX_DIR")}
    env.update(INSTANCE_PATH=str(workdir), WEB_PORT=str(free_port()), PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
               BASE_URL="http://localhost")
    stack = None
    try:
        subprocess.run(["flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack = subprocess.Popen(["honcho", "--procfile", "Procfile.dev", "start"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(args.settle)
        total = 0
        for pid in children(stack.pid):
            pss, rss = memory_kb(pid, "Pss"), memory_kb(pid, "Rss")
            total += pss
            print(f"{pss / 1024:7.1f} MB PSS {rss / 1024:7.1f} MB RSS  {command(pid)}")
        print(f"{total / 1024:7.1f} MB PSS in all (target < 250 MB)")
    finally:
        if stack is not None:
            os.killpg(stack.pid, signal.SIGTERM)
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


# -- the production set

PRODUCTION_TARGET_MB = 600


def tree_kb(pid: int, field: str) -> int:
    """The memory field summed over pid and its descendants (a process that just ended counts 0)."""
    total = 0
    for each in [pid, *children(pid)]:
        try:
            total += memory_kb(each, field)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def start_postgres(port: int, workdir: Path) -> subprocess.Popen:
    """A PostgreSQL of our own with default settings, listening on 127.0.0.1:port only."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries:
        raise SystemExit("bench: PostgreSQL's programs are missing; install them with: apt-get install postgresql")
    data = workdir / "postgres"
    data.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        workdir.chmod(0o755)
        shutil.chown(data, "postgres", "postgres")
    subprocess.run([*as_postgres, str(binaries[-1] / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, stdout=subprocess.DEVNULL)
    return subprocess.Popen([*as_postgres, str(binaries[-1] / "postgres"), "-D", str(data), "-p", str(port),
                             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_production_set(env: dict, workdir: Path) -> dict[str, subprocess.Popen]:
    """gunicorn, a worker and beat as docker-compose.yml starts them."""
    commands = {
        "gunicorn": [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{env['WEB_PORT']}",
                     "wsgi:app"],
        "worker": [sys.executable, "-m", "worker", "--loglevel", "INFO", "--pool", "threads", "--concurrency", "2"],
        "beat": [sys.executable, "-m", "worker.beat", "--loglevel", "INFO", "--schedule",
                 str(workdir / "celerybeat-schedule")],
    }
    return {name: subprocess.Popen(command, cwd=ROOT, env=env, stdout=(workdir / f"{name}.log").open("wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
            for name, command in commands.items()}


def sample(parts: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Each part's (RSS, PSS) in kB, summed over its processes."""
    return {name: (tree_kb(pid, "Rss"), tree_kb(pid, "Pss")) for name, pid in parts.items()}


def print_sample(title: str, sizes: dict[str, tuple[int, int]]) -> int:
    """Print each part and the sums; returns the RSS sum in kB."""
    print(title)
    for name, (rss, pss) in sizes.items():
        print(f"  {rss / 1024:7.1f} MB RSS {pss / 1024:7.1f} MB PSS  {name}")
    total_rss, total_pss = (sum(size[i] for size in sizes.values()) for i in (0, 1))
    print(f"  {total_rss / 1024:7.1f} MB RSS {total_pss / 1024:7.1f} MB PSS  in all")
    return total_rss


def send_and_watch(app, issue_id: int, parts: dict[str, int]) -> tuple[dict[str, tuple[int, int]], float]:
    """Wait for beat to dispatch the issue and the worker to send it; the sample with the largest RSS sum."""
    from sqlalchemy import select

    from newsletter.core.extensions import db
    from newsletter.models import Issue

    peak: dict[str, tuple[int, int]] = {}
    began = time.monotonic()
    while True:
        now = sample(parts)
        if sum(rss for rss, _ in now.values()) > sum(rss for rss, _ in peak.values()):
            peak = now
        with app.app_context():
            status = db.session.scalar(select(Issue.status).where(Issue.id == issue_id))
            db.session.remove()
            db.engine.dispose()  # the bench's own PostgreSQL backend ends: only the set is measured
        if status == "sent":
            return peak, time.monotonic() - began
        if time.monotonic() - began > 1800:
            raise SystemExit("bench: the issue was not sent within 30 minutes")
        time.sleep(0.5)


def production(settle: float, readers: int) -> None:
    """Measure the production set idle, then while it sends an issue to `readers` readers."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import send  # bench/send.py: smtp-sink, Redis, seeding

    workdir = Path(tempfile.mkdtemp(prefix="newsletter-memory-"))
    pg_port, redis_port, sink_port = free_port(), free_port(), free_port()
    started: list[subprocess.Popen] = send.STARTED
    try:
        started.append(start_postgres(pg_port, workdir))
        started += [send.start_redis(redis_port, workdir), send.start_smtp_sink(sink_port)]
        send.wait_until(lambda: send.port_open(pg_port), 30, "PostgreSQL starting")
        env = production_env(pg_port, redis_port, sink_port, workdir)
        subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes = start_production_set(env, workdir)
        started += processes.values()
        parts = {"postgresql": started[0].pid if os.geteuid() else children(started[0].pid)[0],
                 "redis": started[1].pid, **{name: process.pid for name, process in processes.items()}}
        time.sleep(settle)
        idle = print_sample(f"idle, after {settle:.0f} s:", sample(parts))
        os.environ.update(env)
        from newsletter import create_app
        from newsletter.core.extensions import db

        app = create_app(web=False)
        issue_id = send.seed(app, readers)
        with app.app_context():
            db.engine.dispose()  # the seeding connection's backend would count as the set's
        peak, took = send_and_watch(app, issue_id, parts)
        peak_rss = print_sample(f"sending an issue to {readers:,} readers ({took:.0f} s), at the largest sum:", peak)
        print(f"production set: {idle / 1024:.0f} MB RSS idle, {peak_rss / 1024:.0f} MB RSS peak sending "
              f"(target < {PRODUCTION_TARGET_MB} MB)")
    finally:
        stop_all(started)
        shutil.rmtree(workdir, ignore_errors=True)


def production_env(pg_port: int, redis_port: int, sink_port: int, workdir: Path) -> dict:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("OUTBOX_DIR",)},
        "APP_ENV": "production", "INSTANCE_PATH": str(workdir / "instance"), "WEB_PORT": str(free_port()),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink_port),
        "SECRET_KEY": "memory-bench-" + os.urandom(16).hex(),
        "INQUIRY_ENCRYPTION_KEY": "u1Zp2Gq2m0mS8b1c2YJx9bqgk1m3n6Qq3y4Rr8Sx1Xw=",
        "BASE_URL": "https://bench.example.org", "MAIL_FROM": "Inner Calm Counseling <newsletter@bench.example.org>",
        "PRACTICE_INBOX": "practice@bench.example.org", "SEND_RATE_PER_SECOND": "1000000",
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "1"), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    }


if __name__ == "__main__":
    main()
