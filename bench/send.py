"""Benchmark: one issue to N readers through Postfix's smtp-sink, four ways, in one run.

    .venv/bin/python bench/send.py                      # 10,000 readers, 2 workers
    .venv/bin/python bench/send.py --readers 100000
    .venv/bin/python bench/send.py --readers 1000000 --raw-messages 200000 --skip-practice

(a)  raw:   pre-built messages over one reused smtplib connection per process, as many processes as workers; run
           before ours and again after it, and ours/raw is taken against the mean of the two (the machine drifts)
(a') smtp-source: Postfix's own load generator, `-s 2` and `-s 4` sessions kept open, messages of the same size
(b)  naive: Jinja + premailer + a new SMTP connection for every recipient (a sample, it is slow)
(c)  ours:  the whole pipeline: beat's dispatch task, Celery workers, Redis, the database, the delivery ledger
The seeded readers are vacuumed, analysed and checkpointed before anything is measured, as a live install's are.

It prints messages per second for each, ours/raw, ours/smtp-source and ours/naive, the time beat's dispatch task
took to write the ledger, what beat's delivery sweep costs during the send, how the database grew, the CPU per
message, and the peak RSS of every process it started (the workers' after the issue, and once one of them has also
sent an inquiry's forward and acknowledgement), with the load average at the start and the end.

(d) practice mail during the send: the issue goes out again to every reader while a bot fills the contact form
(--bot-inquiries in a minute) and real inquiries arrive every few seconds; how long each real one's forward took
from the form to the SMTP server (p50, p99, max): the forward must not wait behind the batches or the acks.
Needs Postfix's smtp-sink and smtp-source (`apt-get install postfix`; it says so and exits 2 when they are missing,
Postfix's daemon is never used) and redis-server (`apt-get install redis-server`); it starts its own of both.
PostgreSQL is used when BENCH_POSTGRES_URL (default: the test suite's server) answers, else SQLite in a temporary
folder.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import stop_all  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
INSTALL_POSTFIX = "DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SAMPLE_ARTICLE = Path(os.environ.get("BENCH_ARTICLE", ROOT / "seeds" / "sample-article.txt"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"bench: {what} did not happen within {timeout:.0f}s")


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# -- the services the bench starts for itself

def require_postfix_tools() -> None:
    """smtp-sink receives every run's mail and smtp-source is the third baseline: both come with Postfix."""
    missing = [tool for tool in (SMTP_SINK, SMTP_SOURCE) if not os.path.exists(tool)]
    if missing:
        print(f"bench: {' and '.join(missing)} missing; they come with Postfix (nothing needs its daemon):\n"
              f"    {INSTALL_POSTFIX}", file=sys.stderr)
        raise SystemExit(2)


def start_smtp_sink(port: int) -> subprocess.Popen:
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen([SMTP_SINK, *user, f"127.0.0.1:{port}", "1000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: port_open(port), 10, "smtp-sink starting")
    return process


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench: redis-server is missing; install it with: apt-get install redis-server")
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: port_open(port), 10, "redis-server starting")
    return process


def make_database(workdir: Path, sqlite: bool) -> tuple[str, callable]:
    """A PostgreSQL database if a server answers (and SQLite was not asked for), else a SQLite file;
    and how to drop it."""
    if sqlite:
        return f"sqlite:///{workdir / 'bench.sqlite'}", lambda: None
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError:
        admin.dispose()
        return f"sqlite:///{workdir / 'bench.sqlite'}", lambda: None
    name = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", drop


# -- data

def seed(app, readers: int) -> None:
    """N active readers, written 5,000 at a time."""
    from newsletter.core.extensions import db
    from newsletter.models import Subscriber

    with app.app_context():
        db.create_all()
        for start in range(0, readers, 5000):
            db.session.execute(insert(Subscriber), [
                {"email": f"reader{i}@example.com", "name": f"Reader {i}", "status": "active", "source": "import",
                 "token_key": secrets.token_hex(16), "confirmations_sent_today": 0}
                for i in range(start, min(start + 5000, readers))
            ])
            db.session.commit()
    settle(app)


def settle(app) -> None:
    """Leave the seeded readers as a live install has them: analysed, vacuumed and on disk. Otherwise the
    seed's autovacuum and its dirty pages are flushed during whichever measurement comes next (ours, last)."""
    from newsletter.core.extensions import db

    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "postgresql":
            return
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))


def make_issue(app) -> int:
    """One issue made from the sample article, scheduled for now; returns its id."""
    from newsletter.core.extensions import db
    from newsletter.publishing import issues

    with app.app_context():
        issue = issues.create_from_source(SAMPLE_ARTICLE.read_text(encoding="utf-8"), filename=SAMPLE_ARTICLE.name)
        db.session.commit()
        issues.send_now(issue)
        db.session.commit()
        return issue.id


def sample_recipients(app, count: int) -> list:
    from newsletter.core.extensions import db
    from newsletter.models import Subscriber
    from newsletter.sending.ledger import Recipient

    with app.app_context():
        rows = db.session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.token_key).order_by(Subscriber.id)
            .limit(count)
        ).all()
    return [Recipient(0, row.id, row.email, row.name, row.token_key, "active") for row in rows]


# -- (a) raw

def _raw_sender(port: int, messages: list[bytes], count: int, start, done) -> None:
    connection = smtplib.SMTP("127.0.0.1", port)
    start.wait()
    cpu = time.process_time()
    for number in range(count):
        connection.sendmail("newsletter@bench.test", [f"reader{number}@example.com"], messages[number % len(messages)])
    connection.quit()
    done.put((count, time.process_time() - cpu, peak_rss_mb(os.getpid())))


def bench_raw(app, issue_id: int, port: int, readers: int, processes: int) -> tuple[float, float, float, int]:
    """Raw's rate, its CPU per message, its senders' peak RSS and the size of a message."""
    from newsletter.core.extensions import db
    from newsletter.models import Issue
    from newsletter.publishing.issue_mail import IssueMail

    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        mailer = IssueMail(issue)
        messages = [mailer.for_reader(r) for r in sample_recipients(app, 1000)]
    start, done = multiprocessing.Event(), multiprocessing.Queue()
    share = readers // processes
    workers = [multiprocessing.Process(target=_raw_sender, args=(port, messages, share, start, done))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # connections open
    began = time.perf_counter()
    start.set()
    results = [done.get() for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    sent = sum(count for count, _, _ in results)
    return (sent / elapsed, sum(cpu for _, cpu, _ in results) / sent, max(rss for _, _, rss in results),
            len(messages[0]))


# -- (a') Postfix's own load generator

def bench_smtp_source(port: int, messages: int, size: int, sessions: int) -> float:
    """smtp-source: `sessions` parallel sessions kept open (-d), messages of `size` bytes; messages/s."""
    command = [SMTP_SOURCE, "-d", "-s", str(sessions), "-l", str(size), "-m", str(messages),
               "-f", "newsletter@bench.test", "-t", "reader@example.com", f"127.0.0.1:{port}"]
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return messages / (time.perf_counter() - began)


# -- (b) naive

def bench_naive(app, issue_id: int, port: int, sample: int) -> float:
    from newsletter.core.extensions import db
    from newsletter.mail import compose
    from newsletter.models import Issue
    from newsletter.publishing import issues
    from newsletter.readers import personalize, subscriptions

    columns = ("title", "subject", "preheader", "source", "source_format", "signature", "body_html", "body_text",
               "postscript_html", "postscript_text")
    recipients = sample_recipients(app, sample)
    with app.app_context(), app.test_request_context(base_url=app.extensions["settings"].base_url):
        issue = db.session.get(Issue, issue_id)
        values = {name: getattr(issue, name, "") for name in columns}
        began = time.perf_counter()
        for recipient in recipients:
            url = subscriptions.unsubscribe_url(recipient)
            web_url = f"{app.extensions['settings'].base_url}/issues/{issue.slug}"
            html, text_part = issues.render_mail(values, web_url=web_url)
            message = compose.build_message(
                to=compose.Mailbox(recipient.email, recipient.name), subject=issue.subject,
                text=personalize.fill(text_part, unsubscribe_url=url, name=recipient.name, as_html=False),
                html=personalize.fill(html, unsubscribe_url=url, name=recipient.name, as_html=True),
                headers=personalize.list_headers(url))
            with smtplib.SMTP("127.0.0.1", port) as connection:
                connection.send_message(message)
        return len(recipients) / (time.perf_counter() - began)


# -- (c) ours

def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far (user + system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# How the workers are started: as deployed (`python -m worker`), or with --celery-cli as `celery -A worker worker`.
WORKER_COMMANDS = {False: ["worker"], True: ["celery", "-A", "worker", "worker"]}


@dataclass
class Ours:
    rate: float = 0.0  # messages a second, from handing beat's dispatch task over until the issue's sent_at
    cpu: float = 0.0  # the workers' CPU seconds per message
    dispatch: float = 0.0  # seconds the dispatch task took: the ledger written, the batches handed out
    worker_rss: list = field(default_factory=list)  # each worker's peak, MiB
    worker_rss_with_mail: float = 0.0
    sweeps: list = field(default_factory=list)  # seconds each of beat's delivery sweeps took during the send
    database: dict = field(default_factory=dict)  # bytes: before the dispatch, after it, once sent


def start_workers(env: dict, workers: int, workdir: Path, celery_cli: bool) -> list[tuple[subprocess.Popen, Path]]:
    processes = []
    for number in range(workers):
        log = workdir / f"worker-{number}.log"
        processes.append((subprocess.Popen(
            [sys.executable, "-m", *WORKER_COMMANDS[celery_cli], "--pool", "solo", "--loglevel", "INFO",
             "--hostname", f"bench{number}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT), log))
        STARTED.append(processes[-1][0])
    for process, log in processes:
        wait_until(lambda: b" ready." in log.read_bytes() or process.poll() is not None, 60, "worker start")
        if process.poll() is not None:
            raise SystemExit(f"bench: a worker exited; see {log}:\n{log.read_text()[-2000:]}")
    return processes


def bench_ours(app, issue_id: int, env: dict, workers: int, workdir: Path, celery_cli: bool) -> Ours:
    from newsletter.core.extensions import db
    from newsletter.models import Issue
    from newsletter.models.base import utcnow
    from newsletter.sending import ledger
    from newsletter.tasks import dispatch_due_issues

    processes = start_workers(env, workers, workdir, celery_cli)
    ours = Ours()
    ours.database["readers"] = database_bytes(app)

    def sent_or_sweep() -> bool:
        """Whether the issue is sent; if not, run beat's delivery sweep (it finds nothing to hand out
        while the workers keep up, but counts the ledger as beat does every 10 s) and time it."""
        with app.app_context():
            done = db.session.scalar(select(Issue.status).where(Issue.id == issue_id)) == "sent"
            if not done and ours.database.get("ledger") is not None:
                began = time.perf_counter()
                ledger.sweep()
                db.session.commit()
                ours.sweeps.append(time.perf_counter() - began)
            db.session.remove()
            return done

    cpu_before = sum(cpu_seconds(process.pid) for process, _ in processes)
    with app.app_context():
        began = utcnow()
        dispatch_due_issues.delay()  # what beat does every few seconds
    ours.dispatch = wait_until(lambda: dispatch_seconds(processes), 3600, "the dispatch task", interval=0.05)
    ours.database["ledger"] = database_bytes(app)
    wait_until(sent_or_sweep, 7200, "the issue being sent", interval=2.0)
    with app.app_context():  # the end is when the worker that sent the last message marked the issue sent
        sent, sent_at = db.session.execute(select(Issue.recipients_count, Issue.sent_at)
                                           .where(Issue.id == issue_id)).one()
    elapsed = (sent_at - began).total_seconds()
    ours.database["sent"] = database_bytes(app)
    ours.rate = sent / elapsed
    ours.cpu = (sum(cpu_seconds(process.pid) for process, _ in processes) - cpu_before) / sent
    ours.worker_rss = [peak_rss_mb(process.pid) for process, _ in processes]
    send_an_inquirys_mail(app)
    ours.worker_rss_with_mail = max(peak_rss_mb(process.pid) for process, _ in processes)
    return ours


def dispatch_seconds(processes) -> float | None:
    """How long beat's dispatch task took, as its worker logged it ("... succeeded in 1.23s")."""
    for _, log in processes:
        found = re.search(rb"dispatch_due_issues\[[^]]+\] succeeded in ([0-9.]+)s", log.read_bytes())
        if found:
            return float(found.group(1))
    return None


def database_bytes(app) -> int:
    """The database's size on disk: PostgreSQL's pg_database_size, or SQLite's files."""
    from newsletter.core.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            size = db.session.scalar(text("SELECT pg_database_size(current_database())"))
        else:
            path = Path(db.engine.url.database)
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        db.session.remove()
        return size


def send_an_inquirys_mail(app) -> None:
    """Have the same workers write and send one inquiry's forward and acknowledgement: templates, CSS
    inlining and decryption, which a worker that only sends issues never loads."""
    from newsletter.core.extensions import db
    from newsletter.inquiries import intake
    from newsletter.models import OutgoingMail
    from newsletter.readers.subscriptions import Origin
    from newsletter.tasks import queue_inquiry_mails

    with app.app_context():
        inquiry = intake.submit(name="Dana Reyes", email="dana@example.org", phone="", preferred_contact="email",
                                   message="We would like to start couples sessions.", origin=Origin())
        db.session.commit()
        queue_inquiry_mails.delay(inquiry.inquiry_id)

    def both_sent() -> bool:
        with app.app_context():
            sent = db.session.scalar(select(func.count()).select_from(OutgoingMail).where(OutgoingMail.status == "sent"))
            db.session.remove()
            return sent == 2

    wait_until(both_sent, 60, "the inquiry's two mails being sent")


# -- (d) practice mail during the send

def store_inquiry(app, email: str, wrote: dict) -> None:
    """What the contact form does: store the inquiry, hand its mail to a worker; `wrote` gets when."""
    from newsletter.core.extensions import db
    from newsletter.inquiries import intake
    from newsletter.models import utcnow
    from newsletter.readers.subscriptions import Origin
    from newsletter.tasks import enqueue, queue_inquiry_mails

    with app.app_context():
        stored = intake.submit(name="Dana Reyes", email=email, phone="", preferred_contact="email",
                               message="I would like to talk about how work has been going.", origin=Origin())
        db.session.commit()
        wrote[email] = utcnow()
        enqueue(queue_inquiry_mails, stored.inquiry_id)
        db.session.remove()


def forward_delays(app, wrote: dict) -> list[float]:
    """Seconds from each real inquiry to its forward being accepted by the SMTP server (by the Reply-To)."""
    from email import message_from_bytes

    from newsletter.core import crypto
    from newsletter.core.extensions import db
    from newsletter.models import OutgoingMail

    with app.app_context():
        rows = db.session.execute(select(OutgoingMail.message, OutgoingMail.sent_at).where(
            OutgoingMail.kind == "inquiry_forward", OutgoingMail.status == "sent")).all()
        delays = []
        for message, sent_at in rows:
            reply_to = message_from_bytes(crypto.decrypt(message))["Reply-To"] or ""
            address = reply_to.rsplit("<", 1)[-1].rstrip(">")
            if address in wrote:
                delays.append((sent_at - wrote[address]).total_seconds())
        db.session.remove()
        return sorted(delays)


def bench_practice_first(app, bot_inquiries: int, every: float) -> list[float]:
    """Send the issue again while a bot sends `bot_inquiries` in a minute and a real inquiry comes every
    `every` seconds; the real forwards' delays, once all are sent."""
    import threading

    from newsletter.core.extensions import db
    from newsletter.models import Issue
    from newsletter.tasks import dispatch_due_issues

    issue_id = make_issue(app)
    with app.app_context():
        dispatch_due_issues.delay()

    def bot() -> None:
        for number in range(bot_inquiries):
            store_inquiry(app, f"bot{number}@spam.example.net", {})
            time.sleep(60 / bot_inquiries)

    def issue_sent() -> bool:
        with app.app_context():
            sent = db.session.scalar(select(Issue.status).where(Issue.id == issue_id)) == "sent"
            db.session.remove()
            return sent

    wrote: dict = {}
    flood = threading.Thread(target=bot)
    flood.start()
    number = 0
    while flood.is_alive() or not issue_sent():
        store_inquiry(app, f"client{number}@example.org", wrote)
        number += 1
        time.sleep(every)
    flood.join()
    return wait_until(lambda: len(delays := forward_delays(app, wrote)) == len(wrote) and delays, 600,
                      "every real inquiry's forward being sent", interval=1.0)


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def bench_env(workdir: Path, database_url: str, sink_port: int, redis_port: int, batch_size: int) -> dict:
    """The environment of the workers (and of the bench process, which builds the same app)."""
    return {
        **os.environ,
        "INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink_port),
        "SECRET_KEY": "bench-" + secrets.token_hex(16),
        "INQUIRY_ENCRYPTION_KEY": "u1Zp2Gq2m0mS8b1c2YJx9bqgk1m3n6Qq3y4Rr8Sx1Xw=",
        "BASE_URL": "https://bench.example.org",
        "MAIL_FROM": "Inner Calm Counseling <newsletter@bench.example.org>",
        # High enough that the limiter (still consulted for every message) never makes anyone wait.
        "SEND_RATE_PER_SECOND": "1000000",
        "SEND_BATCH_SIZE": str(batch_size),
    }


STARTED: list[subprocess.Popen] = []  # every process the bench started, stopped however it ends


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes for (c), sender processes for (a)")
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--source-messages", type=int, default=100_000,
                        help="messages smtp-source sends (at most --readers)")
    parser.add_argument("--raw-messages", type=int, default=0,
                        help="messages raw sends (default: --readers; it is a rate, a sample of 1M gives the same)")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="SEND_BATCH_SIZE for (c); 0, the default configuration, follows the rate")
    parser.add_argument("--bot-inquiries", type=int, default=1000, help="inquiries a bot sends in a minute during (d)")
    parser.add_argument("--inquiry-every", type=float, default=2.0, help="seconds between real inquiries during (d)")
    parser.add_argument("--skip-practice", action="store_true", help="leave out (d), which sends the issue again")
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even when PostgreSQL answers")
    parser.add_argument("--celery-cli", action="store_true",
                        help="start the workers with `celery -A worker worker` instead of `python -m worker`")
    return parser.parse_args()


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up below on `kill` too
    args = parse_args()
    require_postfix_tools()
    workdir = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    sink_port, redis_port = free_port(), free_port()
    STARTED.append(start_smtp_sink(sink_port))
    STARTED.append(start_redis(redis_port, workdir))
    database_url, drop_database = make_database(workdir, args.sqlite)
    env = bench_env(workdir, database_url, sink_port, redis_port, args.batch_size)
    os.environ.update(env)
    try:
        from newsletter import create_app

        app = create_app()
        backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
        print(f"bench: {args.readers} readers, {args.workers} workers, {backend}, smtp-sink on port {sink_port}; "
              f"{load()}", flush=True)
        began = time.perf_counter()
        seed(app, args.readers)
        print(f"readers written in {time.perf_counter() - began:.1f} s", flush=True)
        issue_id = make_issue(app)
        raw_count = min(args.raw_messages or args.readers, args.readers)
        raw_before, raw_cpu, raw_rss, size = bench_raw(app, issue_id, sink_port, raw_count, args.workers)
        print(f"(a) raw    {raw_before:9.0f} messages/s  (pre-built messages, one smtplib connection per process)",
              flush=True)
        messages = min(args.source_messages, args.readers)
        source = {sessions: bench_smtp_source(sink_port, messages, size, sessions) for sessions in (2, 4)}
        for sessions, rate in source.items():
            print(f"(a') smtp-source -s {sessions} {rate:7.0f} messages/s  ({messages} messages of {size} bytes)",
                  flush=True)
        naive = bench_naive(app, issue_id, sink_port, min(args.naive_sample, args.readers))
        print(f"(b) naive  {naive:9.1f} messages/s  (Jinja + premailer + a connection per recipient, "
              f"{min(args.naive_sample, args.readers)} recipients)", flush=True)
        ours = bench_ours(app, issue_id, env, args.workers, workdir, args.celery_cli)
        # Raw again after ours: the machine drifts by up to 10 % in minutes, so ours is compared with the mean of
        # a raw run on each side of it rather than with one taken minutes before.
        raw_after, raw_cpu_after, _, _ = bench_raw(app, issue_id, sink_port, raw_count, args.workers)
        print(f"(a) raw    {raw_after:9.0f} messages/s  again, after ours; the baseline is the mean of the two",
              flush=True)
        report(args, (raw_before + raw_after) / 2, (raw_cpu + raw_cpu_after) / 2, source, naive, ours)
        print(f"peak RSS of every process, MiB: workers {', '.join(f'{rss:.0f}' for rss in ours.worker_rss)} "
              f"(target < 100 MB; {ours.worker_rss_with_mail:.0f} once one has also sent an inquiry's two mails), "
              f"raw senders {raw_rss:.0f}, redis-server {peak_rss_mb(STARTED[1].pid):.0f}, smtp-sink "
              f"{peak_rss_mb(STARTED[0].pid):.0f}, this bench (seeds, dispatches nothing) "
              f"{peak_rss_mb(os.getpid()):.0f}; {load()}", flush=True)
        if not args.skip_practice:
            delays = bench_practice_first(app, args.bot_inquiries, args.inquiry_every)
            print(f"practice mail during the send: {len(delays)} forwards, p50 {percentile(delays, 0.5):.1f} s, "
                  f"p99 {percentile(delays, 0.99):.1f} s, max {delays[-1]:.1f} s  (a {args.readers}-reader issue "
                  f"going out and {args.bot_inquiries} inquiries from a bot in a minute)")
    finally:
        stop_all(STARTED)
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)


def report(args, raw: float, raw_cpu: float, source: dict, naive: float, ours: Ours) -> None:
    mb = 1024 * 1024
    database = ours.database
    print(f"(c) ours   {ours.rate:9.0f} messages/s  (dispatch, ledger, leases, rate limiter, marks; "
          f"batch size {args.batch_size})")
    print(f"ours/raw   {ours.rate / raw:9.2f}   (target >= 1.0)")
    for sessions, rate in source.items():
        print(f"ours/smtp-source -s {sessions} {ours.rate / rate:5.2f}")
    print(f"ours/naive {ours.rate / naive:9.1f}   (target >= 20)")
    print(f"ledger creation: the dispatch task took {ours.dispatch:.2f} s for {args.readers} readers "
          f"(INSERT ... SELECT, the count, {math.ceil(args.readers / 500)} or so batches handed out)")
    sweeps = sorted(ours.sweeps) or [0.0]
    print(f"beat: the delivery sweep took {percentile(sweeps, 0.5) * 1000:.0f} ms (median), "
          f"{sweeps[-1] * 1000:.0f} ms (max) over {len(ours.sweeps)} sweeps during the send")
    print(f"database: {database['readers'] / mb:.1f} MiB with the readers, +{(database['ledger'] - database['readers']) / mb:.1f}"
          f" MiB for the ledger, +{(database['sent'] - database['ledger']) / mb:.1f} MiB by the end of the send")
    # Less at the mercy of other load on the machine than the rates: the sender's own CPU per message.
    print(f"CPU per message: raw {raw_cpu * 1000:.2f} ms (senders), ours {ours.cpu * 1000:.2f} ms (workers, "
          f"whole tasks; PostgreSQL, Redis and smtp-sink not counted)", flush=True)


if __name__ == "__main__":
    main()
