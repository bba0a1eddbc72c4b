"""Real parts for the test suite: a controllable SMTP server, Celery worker processes, Redis, the checker programs."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Callable

import pytest
from aiosmtpd.controller import Controller
from dnslib import MX, QTYPE, RCODE, RR, TXT, DNSLabel
from dnslib.server import DNSError, DNSHandler
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
# The therapist's real article, signature block included: the first content the product must get right.
SAMPLE_ARTICLE = ROOT / "seeds" / "sample-article.txt"
# The Nu HTML checker, from npm's vnu-jar (package.json); scripts/test.sh installs Java to run it.
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def required_program(name: str, package: str) -> str:
    """The program's path. A missing one fails under CI=true (scripts/test.sh installs Debian's `package`), and
    elsewhere skips the test saying what to install: a checker that quietly skips in CI checks nothing."""
    # Daemons (spamd) live in sbin, which a user's PATH may leave out.
    path = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        missing_tool(f"{name} is not installed (scripts/test.sh installs Debian's {package})")
    return path


def missing_tool(reason: str):
    """Fail under CI=true, skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def vnu_errors(paths: list[Path]) -> dict[str, list[str]]:
    """The Nu HTML checker's errors per file (its stem), one JVM for all files: "line N: message"."""
    java = required_program("java", "default-jre-headless")
    if not VNU_JAR.is_file():
        pytest.fail("node_modules/vnu-jar is missing: run `npm ci` (scripts/test.sh does it)")
    result = subprocess.run([java, "-jar", str(VNU_JAR), "--format", "json", "--stdout", "--exit-zero-always",
                             *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    errors = {path.stem: [] for path in paths}
    for message in json.loads(result.stdout)["messages"]:
        if message["type"] != "info":  # "error", or "non-document-error" (the file could not be read)
            errors[Path(message.get("url", "?")).stem].append(f"line {message.get('lastLine')}: {message['message']}")
    return errors


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05,
             message: str | Callable[[], str] = ""):
    """Poll until predicate() is truthy and return its value; fail the test after `timeout`, saying `message`
    (called then, when it is a function: the state at the end, not at the start)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            raise AssertionError(said or f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class Received:
    """One message as the SMTP server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage = field(init=False)
    received_at: float = field(default_factory=time.monotonic)  # when the server accepted it

    def __post_init__(self) -> None:
        self.message = BytesParser(policy=policy.default).parsebytes(self.raw)

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part else ""


class SMTPRecorder:
    """aiosmtpd handler: records every accepted message and fails on demand.

    - fail_next(n, code): the next n messages are answered `code` at DATA (421, 451, 550...)
    - reject(address, code): RCPT for that address is answered `code` (until cleared)
    - drop_next(n): the next n messages have their connection dropped at DATA
    - reject_sender(address, code): MAIL FROM with that address is answered `code`
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.messages: list[Received] = []
        self.connections = 0
        self._failures: deque[int] = deque()
        self._drops = 0
        self._rejects: dict[str, int] = {}
        self._rejected_senders: dict[str, int] = {}
        self.answers: list[int] = []
        self._hooks: dict[str, Callable[[int], None]] = {}
        self.pipelining = True  # offer PIPELINING (RFC 2920), as real relays do

    # -- control, from the test thread
    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self._failures.clear()
            self._drops = 0
            self._rejects.clear()
            self._rejected_senders.clear()
            self.answers.clear()
            self.connections = 0
            self._hooks.clear()
            self.pipelining = True

    def fail_next(self, count: int, code: int = 451) -> None:
        with self._lock:
            self._failures.extend([code] * count)

    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._drops += count

    def reject(self, address: str, code: int = 550) -> None:
        with self._lock:
            self._rejects[address.lower()] = code

    def reject_sender(self, address: str, code: int = 550) -> None:
        """MAIL FROM with this address is answered `code` (until reset)."""
        with self._lock:
            self._rejected_senders[address.lower()] = code

    def on(self, event: str, callback: Callable[[int], None] | None) -> None:
        """Run callback(messages accepted so far) on the server's thread at "MAIL" (MAIL FROM received),
        "RCPT" (RCPT TO received) or "ACCEPTED" (message stored, before the 250 is sent): the fault
        tests kill a worker at an exact point of the exchange. None removes the hook."""
        with self._lock:
            if callback is None:
                self._hooks.pop(event, None)
            else:
                self._hooks[event] = callback

    def _run_hook(self, event: str) -> None:
        with self._lock:
            hook, accepted = self._hooks.get(event), len(self.messages)
        if hook:
            hook(accepted)

    def wait_for_messages(self, count: int, timeout: float = 20.0) -> list[Received]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} messages, the SMTP server got {len(self.messages)}")
            return list(self.messages)

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    # -- aiosmtpd hooks, on the server's thread
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            code = self._rejected_senders.get(address.lower())
        if code:
            return f"{code} 5.7.1 Sender not allowed"
        self._run_hook("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._lock:
            code = self._rejects.get(address.lower())
        if code:
            with self._lock:
                self.answers.append(code)
            return f"{code} {'5.1.1 No such user here' if code >= 500 else '4.2.1 Mailbox busy, try later'}"
        self._run_hook("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self._drops:
                self._drops -= 1
                server.transport.close()
                return "421 4.4.2 Connection dropped"
            if self._failures:
                code = self._failures.popleft()
                self.answers.append(code)
                return f"{code} {'5.7.1 Message rejected' if code >= 500 else '4.3.0 Try again later'}"
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            self.answers.append(250)
            self._lock.notify_all()
        self._run_hook("ACCEPTED")
        return "250 Message accepted"


class SMTPServer:
    """A real SMTP server on a free local port."""

    def __init__(self) -> None:
        self.recorder = SMTPRecorder()
        self.port = free_port()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                     decode_data=False, enable_SMTPUTF8=True)

    def start(self) -> "SMTPServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def start_again(self) -> "SMTPServer":
        """Back on the same port after stop(), with the same recorder (an outage that ends)."""
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                     decode_data=False, enable_SMTPUTF8=True)
        return self.start()


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class RedisServer:
    """A private redis-server on a spare port: each test session has its own, so parallel runs
    never share a queue, and outage tests can stop and restart it on the same port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: scripts/test.sh installs it (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(workdir)]
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis_answers(self.url), timeout=10, message="redis-server did not start")

    def stop(self) -> None:
        """Stop it (what a Redis outage looks like); data is lost, as with a real restart."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# How deployments start a worker (docker-compose.yml, Procfile.dev) and beat (docker-compose.yml), and SPEC's
# commands for the same.
DEPLOYED_WORKER = ("worker",)
CELERY_WORKER = ("celery", "-A", "worker", "worker")
DEPLOYED_BEAT = ("worker.beat",)
CELERY_BEAT = ("celery", "-A", "worker", "beat")


class WorkerProcess:
    """A real worker process (`python -m worker`, as deployed) with the test settings in its environment."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str, concurrency: int = 1,
                 pool: str = "solo", queues: str | None = None, command: tuple[str, ...] = DEPLOYED_WORKER) -> None:
        self.log_path = log_path
        self.name = name
        self.hostname = f"{name}@{socket.gethostname()}"  # what control commands address it by
        self.env = {**os.environ, **env}
        self.args = [sys.executable, "-m", *command, "--loglevel", "INFO",
                     "--hostname", self.hostname, "--pool", pool, "--concurrency", str(concurrency),
                     "--without-gossip", "--without-mingle", "--without-heartbeat"]
        if queues:  # a test's own queue, so the session worker never takes its tasks
            self.args += ["--queues", queues]
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "WorkerProcess":
        self._log = self.log_path.open("ab")
        start_offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._ready(start_offset), timeout=timeout,
                 message=f"worker {self.name} did not become ready; see {self.log_path}")
        return self

    def _ready(self, offset: int) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                                 + self.log_path.read_text()[-3000:])
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return b" ready." in handle.read()

    def drop_held_tasks(self, celery) -> None:
        """Revoke what this worker still holds from earlier tests (prefetched, or waiting out a retry's
        countdown), once it is between tasks: those tasks name rows by id, and ids start again with each test."""
        hostname = self.hostname

        def between_tasks_holding_nothing() -> bool:
            with celery.connection() as connection:  # not the pool's: an earlier test may have restarted Redis
                inspector = celery.control.inspect(destination=[hostname], timeout=1, connection=connection)
                scheduled, reserved = inspector.scheduled(), inspector.reserved()
                if scheduled is None or reserved is None:  # a solo pool answers only between tasks
                    return False
                held = [task["request"]["id"] for task in scheduled.get(hostname, [])]
                held += [task["id"] for task in reserved.get(hostname, [])]
                if held:
                    celery.control.revoke(held, destination=[hostname], connection=connection)
                return not held

        wait_for(between_tasks_holding_nothing, timeout=120, message=f"worker {self.name} stayed busy")

    def consume(self, celery, taking: bool) -> None:
        """Start (`taking`) or stop taking tasks from every queue. Between the tests that ask for a worker the
        session worker takes nothing: another test's hand-offs stay in Redis (the next `worker` purges them)
        instead of being applied while that test applies or checks the same rows itself."""
        with contextlib.suppress(Exception), celery.connection() as connection:  # Redis may be down: as before
            for queue in ("practice", "mail", "bulk"):
                if taking:
                    celery.control.add_consumer(queue, destination=[self.hostname], reply=True, timeout=5,
                                                connection=connection)
                else:
                    celery.control.cancel_consumer(queue, destination=[self.hostname], connection=connection)

    def kill(self) -> None:
        """SIGKILL the whole process group: what a crash or an OOM kill does."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


class BeatProcess(WorkerProcess):
    """A real beat process (the scheduler) as production runs it (`python -m worker.beat`, or `command`), with its
    own schedule file."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str,
                 command: tuple[str, ...] = DEPLOYED_BEAT) -> None:
        super().__init__(env, log_path, name)
        self.args = [sys.executable, "-m", *command, "--loglevel", "INFO",
                     "--schedule", str(log_path.with_suffix(".schedule"))]

    def _ready(self, offset: int) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"beat {self.name} exited with {self.process.returncode}; see {self.log_path}")
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return b"beat: Starting" in handle.read()


class GunicornProcess(WorkerProcess):
    """The web app served by a real gunicorn as production runs it (`gunicorn -c gunicorn.conf.py wsgi:app`,
    threaded workers) on a free local port; its output, the access log included, goes to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str, workers: int = 2) -> None:
        super().__init__(env, log_path, name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(workers), "--no-control-socket", "wsgi:app"]

    def _ready(self, offset: int) -> bool:
        import urllib.error
        import urllib.request

        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode}:\n" + self.log_text()[-3000:])
        try:
            with urllib.request.urlopen(self.url + "/", timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def process_fixture(kind: type[WorkerProcess], prefix: str, doc: str):
    """A fixture (the start_* ones) yielding start(env=None, **options): it starts a `kind` process on the test's
    settings (with `env` on top); every process started is stopped after the test. `doc` is its docstring."""

    def start_processes(settings, _schema, tmp_path):
        started: list[WorkerProcess] = []

        def start(env: dict[str, str] | None = None, **options) -> WorkerProcess:
            name = f"{prefix}{len(started)}-{uuid.uuid4().hex[:6]}"
            process = kind({**settings, **(env or {})}, tmp_path / f"{name}.log", name=name, **options).start()
            started.append(process)
            return process

        try:
            yield start
        finally:
            for process in started:
                process.stop()

    start_processes.__doc__ = doc
    return pytest.fixture(start_processes)


def apply_stored_forms(app) -> None:
    """Do what a worker does after the response: apply the signups and compose the inquiries' mail
    that the forms stored (tests look right after posting). The mail is handed to the worker as usual."""
    from datetime import timedelta

    from newsletter.inquiries import intake
    from newsletter.readers import subscriptions
    from newsletter.tasks import apply_signup, queue_inquiry_mails

    with app.app_context():
        for request_id in subscriptions.signups_waiting(older_than=timedelta(0)):
            apply_signup(request_id)
        for inquiry_id in intake.waiting_for_mail(older_than=timedelta(0)):
            queue_inquiry_mails(inquiry_id)


class Zone:
    """The records the test DNS server answers with; names in `silent` get no answer at all."""

    def __init__(self):
        self.records: dict[tuple[str, str], list[str]] = {}
        self.silent: set[str] = set()
        self.queries = 0
        self.lock = threading.Lock()

    def set(self, name: str, rdtype: str, *values: str) -> None:
        self.records[(name.lower(), rdtype)] = list(values)

    def resolve(self, request, handler):
        """dnslib's resolver interface: build the reply, or raise DNSError to send none (a timeout)."""
        with self.lock:
            self.queries += 1
        name = str(request.q.qname).rstrip(".").lower()
        rdtype = QTYPE[request.q.qtype]
        if name in self.silent:
            raise DNSError("silent on purpose")
        reply = request.reply()
        values = self.records.get((name, rdtype), [])
        if not values and not any(key[0] == name for key in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        for value in values:
            if rdtype == "MX":
                preference, _, host = value.partition(" ")
                rdata = MX(DNSLabel(host), int(preference))
            else:  # TXT: split into the 255-byte strings DNS allows, as DNS hosts do
                data = value.encode()
                rdata = TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=60))
        return reply


class UDPHandler(DNSHandler):
    udplen = 512  # answers too long for UDP come back truncated, so the client asks again over TCP


POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


FERNET_TEST_KEY = "u1Zp2Gq2m0mS8b1c2YJx9bqgk1m3n6Qq3y4Rr8Sx1Xw="


def app_config(settings: dict) -> dict:
    config = {key: value for key, value in settings.items() if key != "INSTANCE_PATH"}
    config["SMTP_PORT"] = int(settings["SMTP_PORT"])
    config["SMTP_TIMEOUT"] = float(settings["SMTP_TIMEOUT"])
    config["SEND_RATE_PER_SECOND"] = float(settings["SEND_RATE_PER_SECOND"])
    return config


class ClosingClient(FlaskClient):
    """Closes each response, as a WSGI server does once it is sent: work registered with
    call_on_close (handing mail to the worker) then runs, as it does in production."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def compile_each_route_builder_once() -> None:
    """Every test builds its app, and werkzeug writes and compiles two Python functions per route for url_for:
    most of the time create_app takes (60 ms of 65). A builder depends only on its rule's parsed form and
    defaults, and is handed its rule when called, so the tests compile each once per process for every app."""
    from werkzeug.routing.rules import Rule

    compile_builder, builders = Rule._compile_builder, {}

    def compiled_once(rule: Rule, append_unknown: bool = True):
        key = (rule.rule, tuple(rule._trace), repr(sorted((rule.defaults or {}).items())), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(rule, append_unknown)
        return builders[key]

    Rule._compile_builder = compiled_once


def make_app(settings: dict, **overrides):
    from newsletter import create_app

    config = app_config(settings)
    config.update({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False,
                   "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})
    config.update(overrides)
    app = create_app(config)
    app.test_client_class = ClosingClient
    return app


def settings_of(values: dict):
    """A Settings object from SPEC.md names, unchecked: for code that is handed the settings (domain check, transports)."""
    from newsletter.core.config import Settings

    return Settings(**{name.lower(): value for name, value in values.items()})


def change_settings(app, **changes) -> None:
    """Change a built app's settings after its start-up check: what a deployer got wrong, or a limit a test lowers."""
    app.extensions["settings"] = replace(app.extensions["settings"], **{name.lower(): value
                                                                        for name, value in changes.items()})
