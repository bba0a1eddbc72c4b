"""Benchmark: the public pages under load, against a bare Flask view on the same gunicorn, in one run.

    .venv/bin/pip install -r requirements-bench.txt      # locust, once
    .venv/bin/python bench/web.py                        # PostgreSQL if the test server answers, else SQLite
    .venv/bin/python bench/web.py --sqlite --duration 30

For each of bare (the baseline: GET /bench/bare), GET /, POST /subscribe and POST /contact it runs
locust headless twice: at a fixed arrival rate (--rate requests/s, default 50) and at rising concurrency
(1 to --users clients, default 200, added evenly over the run, each sending as fast as answers come),
--duration seconds each (default 60). It prints requests/s, p50, p99 and errors for each, and the ratios
to the baseline; then checks that every signup and inquiry answered with its thank-you page is in the
database with its mail queued (OutgoingMail rows; the stored signups and inquiries are applied first, as the
worker would). The targets of issue 14: GET / at >= 0.5 x the
baseline's requests/s, signup and contact at >= 0.1 x, p99 under 100 ms at 50 requests/s (the app's own
time, from gunicorn's access log (%(D)s): the load tool on the same two cores adds 0 to 45 ms to every
answer, the bare view's included, so its figures are printed beside but not judged).

Gunicorn runs with gunicorn.conf.py when the project has one, else 3 sync workers; rate limits are off
(every request comes from 127.0.0.1). It starts its own Redis; no Celery worker runs, so queued mail
stays queued and can be counted.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from send import ROOT, free_port, make_database, port_open, start_redis, wait_until  # bench/send.py
from sqlalchemy import select

TARGETS = ("bare", "home", "subscribe", "contact")
STARTED: list[subprocess.Popen] = []


# The request line each target's measured requests have in gunicorn's access log.
REQUEST_LINES = {"bare": '"GET /bench/bare ', "home": '"GET / ', "subscribe": '"POST /subscribe ',
                 "contact": '"POST /contact '}
# gunicorn's default access log line plus %(D)s, the time the app took (microseconds), at the end.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'


@dataclass
class Figures:
    requests_per_second: float
    p50_ms: float  # as the load tool saw it
    p99_ms: float
    requests: int
    errors: int
    server_p50_ms: float = 0.0  # as gunicorn timed it: the app's own time, without the load tool's
    server_p99_ms: float = 0.0


def start_gunicorn(env: dict, port: int, log: Path) -> subprocess.Popen:
    config = ["-c", str(ROOT / "gunicorn.conf.py")] if (ROOT / "gunicorn.conf.py").exists() else ["--workers", "3"]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *config, "--bind", f"127.0.0.1:{port}",
         "--access-logformat", ACCESS_LOG_FORMAT, "bench.web_app:app"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    STARTED.append(process)
    wait_until(lambda: port_open(port), 60, f"gunicorn starting (see {log})")
    # The workers import the app after the port opens: warm every one of them before measuring.
    for _ in range(30):
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), 60, f"gunicorn answering (see {log})")
    return process


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status == 200
    except OSError:
        return False


def server_times(log: Path, offset: int, target: str) -> tuple[float, float]:
    """p50 and p99 in ms of the app's own time for the target's requests logged after `offset`."""
    with log.open("rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode("utf-8", "replace").splitlines()
    times = sorted(int(line.rsplit(" ", 1)[1]) / 1000 for line in lines
                   if REQUEST_LINES[target] in line and line.rsplit(" ", 1)[1].isdigit())
    if not times:
        return 0.0, 0.0
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


def run_locust(target: str, url: str, workdir: Path, duration: int, rate: int | None, users: int) -> Figures:
    """One locust run against one endpoint; its aggregated figures."""
    prefix = workdir / f"{target}-{'rate' if rate else 'rising'}"
    log, offset = workdir / "gunicorn.log", (workdir / "gunicorn.log").stat().st_size
    clients = rate or users
    env = {**os.environ, "BENCH_TARGET": target, "BENCH_ACCEPTED": str(workdir / "accepted.txt")}
    if rate:
        env["BENCH_RATE"] = str(rate)
    # At a fixed rate every client starts within a second; rising concurrency adds them over the whole run.
    spawn_rate = clients if rate else max(clients / duration, 1)
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile_web.py"), "--headless",
         "--host", url, "--users", str(clients), "--spawn-rate", f"{spawn_rate:.2f}", "--run-time", f"{duration}s",
         "--csv", str(prefix), "--only-summary", "--loglevel", "INFO", "--exit-code-on-error", "0"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=(workdir / "locust.log").open("ab"))
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next((r for r in csv.DictReader(handle) if r["Name"] == target), None)
    if row is None:  # not one answer within the run
        return Figures(0.0, 0.0, 0.0, 0, 0)
    return Figures(float(row["Requests/s"]), float(row["50%"]), float(row["99%"]), int(row["Request Count"]),
                   int(row["Failure Count"]), *server_times(log, offset, target))


def apply_stored_forms(env: dict) -> int:
    """What the worker does after each signup's and inquiry's answer (no worker runs during the load):
    apply the signups, write the inquiries' forward and acknowledgement. Returns how many."""
    from datetime import timedelta

    os.environ.update(env)
    from newsletter import create_app
    from newsletter.core.extensions import commit
    from newsletter.inquiries import intake
    from newsletter.readers import subscriptions

    app, applied = create_app(web=False), 0
    with app.app_context():
        while waiting := subscriptions.signups_waiting(older_than=timedelta(0)):
            for request_id in waiting:
                commit(lambda: subscriptions.process_signup(request_id))
                applied += 1
        while waiting := intake.waiting_for_mail(older_than=timedelta(0)):
            for inquiry_id in waiting:
                commit(lambda: intake.queue_mails(inquiry_id))
                applied += 1
    return applied


def check_accepted(env: dict, accepted_file: Path) -> tuple[int, list[str]]:
    """Every address answered with a thank-you page: a reader or inquiry row, and its mail queued.
    Inquirers' and recipients' addresses are encrypted: read through the app, which decrypts them."""
    os.environ.update(env)
    from newsletter import create_app
    from newsletter.core.extensions import db
    from newsletter.models import Inquiry, OutgoingMail, Subscriber

    accepted = set(accepted_file.read_text().split()) if accepted_file.exists() else set()
    with create_app(web=False).app_context():
        readers = {email for email in db.session.scalars(select(Subscriber.email)) if email.startswith("bench-")}
        inquirers = {email for email in db.session.scalars(select(Inquiry.email)) if email.startswith("bench-")}
        mail = db.session.execute(select(OutgoingMail.kind, OutgoingMail.recipient)).all()
    mailed = Counter(recipient for _kind, recipient in mail if recipient.startswith("bench-"))
    practice_copies = sum(kind.startswith("inquiry_") and not recipient.startswith("bench-") for kind, recipient in mail)
    missing = sorted(a for a in accepted if a not in readers | inquirers or mailed.get(a, 0) != 1)
    if practice_copies != len(inquirers):
        missing.append(f"{len(inquirers)} inquiries but {practice_copies} forwards to the practice")
    return len(accepted), missing


def migrate(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(results: dict[tuple[str, str], Figures], rate: int) -> bool:
    print(f"\n{'':<33} {'load tool':>25} {'app (gunicorn)':>17}")
    print(f"{'endpoint':<10} {'load':<14} {'req/s':>8} {'x bare':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'x bare':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    ok = True
    for mode in ("rate", "rising"):
        base = results[("bare", mode)]
        for target in TARGETS:
            fig = results[(target, mode)]
            ratio = fig.requests_per_second / base.requests_per_second if base.requests_per_second else 0
            p99_ratio = fig.p99_ms / base.p99_ms if base.p99_ms else 0
            load = f"{rate} req/s" if mode == "rate" else "rising"
            print(f"{target:<10} {load:<14} {fig.requests_per_second:>8.1f} {ratio:>7.2f} {fig.p50_ms:>8.0f} "
                  f"{fig.p99_ms:>8.0f} {p99_ratio:>7.1f} {fig.server_p50_ms:>8.1f} {fig.server_p99_ms:>8.1f} "
                  f"{fig.errors:>7}")
            if mode == "rising" and target != "bare":
                needed = 0.5 if target == "home" else 0.1
                if ratio < needed:
                    print(f"  !! {target}: {ratio:.2f} x the baseline's throughput, the target is {needed} x")
                    ok = False
            # Judged on the app's own time: the load tool, on the same cores, adds 0 to 45 ms even to the
            # bare view (which gunicorn times at about 1 ms); its figures are printed beside.
            if mode == "rate" and target != "bare" and fig.server_p99_ms >= 100:
                print(f"  !! {target}: p99 {fig.server_p99_ms:.0f} ms at {rate} req/s, the target is under 100 ms")
                ok = False
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds per run (default 60)")
    parser.add_argument("--rate", type=int, default=50, help="requests per second of the fixed-rate runs")
    parser.add_argument("--users", type=int, default=200, help="clients at the end of the rising runs")
    parser.add_argument("--sqlite", action="store_true", help="the embedded database even if PostgreSQL answers")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    database_url, drop_database = make_database(workdir, args.sqlite)
    redis_port, web_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "SECRET_KEY": "bench-secret", "INQUIRY_ENCRYPTION_KEY": "u1Zp2Gq2m0mS8b1c2YJx9bqgk1m3n6Qq3y4Rr8Sx1Xw=",
           "INSTANCE_PATH": str(workdir / "instance"), "RATELIMIT_ENABLED": "false", "BENCH_BASELINE": "1",
           "PYTHONPATH": str(ROOT)}
    try:
        STARTED.append(start_redis(redis_port, workdir))
        migrate(env)
        start_gunicorn(env, web_port, workdir / "gunicorn.log")
        print(f"bench: {database_url.split(':', 1)[0]}, {args.duration}s per run, logs in {workdir}")
        results = {}
        for mode in ("rate", "rising"):
            for target in TARGETS:
                results[(target, mode)] = run_locust(target, f"http://127.0.0.1:{web_port}", workdir, args.duration,
                                                     args.rate if mode == "rate" else None, args.users)
                print(f"  {target} ({mode}) done", flush=True)
        fast = report(results, args.rate)
        print(f"\nsignups and inquiries stored by the forms, applied now as the worker would: {apply_stored_forms(env)}")
        accepted, missing = check_accepted(env, workdir / "accepted.txt")
        print(f"\naccepted signups and inquiries: {accepted}; missing from the database or without exactly one "
              f"queued mail: {len(missing)}")
        for item in missing[:10]:
            print(f"  {item}")
        sys.exit(0 if fast and not missing else 1)
    finally:
        for process in reversed(STARTED):
            process.terminate()
            process.wait(timeout=30)
        drop_database()


if __name__ == "__main__":
    main()
