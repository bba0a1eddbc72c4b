"""Fixtures: app → client → runner, on SQLite and on PostgreSQL, with a real Redis, a real SMTP
server and real Celery worker processes.

Every test that uses `app` runs twice, once per database. PostgreSQL is skipped only where no
server answers, and the summary says so loudly; with CI=true an unreachable PostgreSQL fails.
"""
from __future__ import annotations

import base64
import os
import re
import threading
import uuid
from contextlib import ExitStack, nullcontext

import pyotp
import pytest
from argon2 import PasswordHasher, profiles
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dnslib.server import DNSLogger, DNSServer
from flask import has_app_context
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from werkzeug.serving import make_server

from newsletter.deliverability import domain_check
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, add_reader, csrf_token, next_code, upgraded_from
from tests.relays import MAILGUN_KEY, POSTMARK_LOGIN, TOPIC, CertServer
from tests.support import (
    FERNET_TEST_KEY,
    POSTGRES_ADMIN_URL,
    GunicornProcess,
    RedisServer,
    SMTPServer,
    UDPHandler,
    WorkerProcess,
    Zone,
    app_config,
    compile_each_route_builder_once,
    free_port,
    make_app,
    process_fixture,
    redis_answers,
)

# One Redis database per backend, so the SQLite worker never takes the PostgreSQL run's tasks.
REDIS_DB = {"sqlite": 11, "postgresql": 12}

_postgres_skipped: list[str] = []

compile_each_route_builder_once()


def pytest_terminal_summary(terminalreporter):
    if _postgres_skipped:
        terminalreporter.write_sep("!", "PostgreSQL WAS NOT TESTED", red=True, bold=True)
        terminalreporter.write_line(f"No PostgreSQL server answered at {POSTGRES_ADMIN_URL}: {_postgres_skipped[0]}",
                                    red=True, bold=True)
        terminalreporter.write_line("Every database test ran on SQLite only. Start PostgreSQL or set TEST_POSTGRES_URL.",
                                    red=True, bold=True)


# -- password hashes

@pytest.fixture(scope="session", autouse=True)
def _production_hasher():
    """Passwords are hashed at argon2's cheapest cost in the tests: the product's (64 MB, a third of a second
    per hash and per check here) paid at every sign-in was minutes of the suite. Yields the product's own
    hasher, for `production_password_hashes`."""
    from newsletter.accounts import users

    production = users._hasher
    users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    users._dummy_hash.cache_clear()
    yield production
    users._hasher = production
    users._dummy_hash.cache_clear()


@pytest.fixture
def production_password_hashes(_production_hasher, monkeypatch):
    """The product's own argon2 cost for this test (the tests of what is stored and how it is checked)."""
    from newsletter.accounts import users

    monkeypatch.setattr(users, "_hasher", _production_hasher)
    users._dummy_hash.cache_clear()
    yield _production_hasher
    users._dummy_hash.cache_clear()


# -- real services, once per session

@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """This session's own Redis; `redis_server.stop()` / `.start()` simulate an outage."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return redis_server.url


@pytest.fixture
def redis_outage(redis_server):
    """Yields the server stopped; it is running again after the test, whatever happened."""
    redis_server.stop()
    yield redis_server
    if not redis_answers(redis_server.url):
        redis_server.start()


@pytest.fixture(scope="session")
def smtp_server():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server):
    """The SMTP server's recorder, emptied for this test."""
    smtp_server.recorder.reset()
    yield smtp_server.recorder
    smtp_server.recorder.reset()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    """A fresh database URL for the session: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.sqlite'}"
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        reason = str(exc).splitlines()[0]
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test PostgreSQL, but none answered: {reason}")
        _postgres_skipped.append(reason)
        pytest.skip(f"PostgreSQL unreachable: {reason}")
    name = f"newsletter_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield "postgresql", POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def settings(database, redis_url, smtp_server, tmp_path_factory):
    """The environment both the test app and the worker processes are built from."""
    backend, url = database
    instance = tmp_path_factory.mktemp(f"instance-{backend}")
    return {
        "DATABASE_URL": url,
        "REDIS_URL": f"{redis_url}/{REDIS_DB[backend]}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_TIMEOUT": "10",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "INQUIRY_ENCRYPTION_KEY": FERNET_TEST_KEY,
        "BASE_URL": "http://newsletter.test",
        "MAIL_FROM": "Inner Calm Counseling <newsletter@newsletter.test>",
        "PRACTICE_INBOX": "practice@newsletter.test",
        "SEND_RATE_PER_SECOND": "500",
        "OUTBOX_DIR": str(instance / "outbox"),
        "INSTANCE_PATH": str(instance),
    }


@pytest.fixture(scope="session")
def _schema(settings):
    from newsletter import create_app
    from newsletter.core.extensions import db

    app = create_app(app_config(settings))
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.engine.dispose()
    return True




# -- the app chain

@pytest.fixture
def app(settings, _schema, monkeypatch):
    """The app on this session's database, emptied after the test. Rate limits and CSRF are
    off here; the tests about them turn them on with `make_app`."""
    monkeypatch.setenv("INSTANCE_PATH", settings["INSTANCE_PATH"])
    app = make_app(settings)
    yield app
    _empty_database(app)






@pytest.fixture
def app_factory(settings, _schema, monkeypatch):
    """Build an app with config overrides (CSRF on, rate limits on...), emptied after the test."""
    monkeypatch.setenv("INSTANCE_PATH", settings["INSTANCE_PATH"])
    built = []

    def factory(**overrides):
        built.append(make_app(settings, **overrides))
        return built[-1]

    yield factory
    for app in built:
        _empty_database(app)


def _empty_database(app, attempts: int = 3) -> None:
    """Empty every table, and start PostgreSQL's ids again at 1 (tests name rows by id).

    Row by row, after locking every table as TRUNCATE would: TRUNCATE makes new files for 32 tables, 0.7 s a
    test, where deleting the few rows a test made takes a hundredth of that. The session worker may still be
    finishing a task the test handed off; if its transaction and ours deadlock, PostgreSQL cancels one of the
    two, and we try again."""
    from newsletter.core.extensions import db

    tables = list(reversed(db.metadata.sorted_tables))
    with app.app_context():
        db.session.remove()
        for attempt in range(attempts):
            try:
                with db.engine.begin() as conn:
                    postgresql = conn.dialect.name == "postgresql"
                    if postgresql:
                        names = ", ".join(f'"{t.name}"' for t in tables)
                        conn.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
                    for table in tables:
                        conn.execute(table.delete())
                    if postgresql:
                        conn.execute(text(_RESTART_SEQUENCES))
                break
            except OperationalError:
                if attempt == attempts - 1:
                    raise
        db.engine.dispose()


# Every sequence this database has used back to its start, as TRUNCATE ... RESTART IDENTITY does.
_RESTART_SEQUENCES = """
SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)
FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL
"""


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


# -- workers

@pytest.fixture(scope="session")
def session_worker(settings, _schema, tmp_path_factory):
    backend = "postgresql" if settings["DATABASE_URL"].startswith("postgresql") else "sqlite"
    process = WorkerProcess(settings, tmp_path_factory.mktemp("logs") / f"worker-{backend}.log",
                            name=f"session-{backend}-{uuid.uuid4().hex[:6]}").start()
    yield process
    process.stop()


@pytest.fixture
def worker(app, session_worker):
    """One real Celery worker process for the session's database, consuming every queue.

    Tasks that earlier tests handed off are dropped first, from the broker and from the worker's hands:
    they name rows by id, ids start again with each test, and the worker would apply them to this test's rows."""
    celery = app.extensions["celery"]
    celery.control.purge()
    session_worker.drop_held_tasks(celery)
    session_worker.consume(celery, taking=True)
    yield session_worker
    session_worker.consume(celery, taking=False)  # a test without a worker has its hand-offs to itself


start_worker = process_fixture(WorkerProcess, "extra", """Start extra worker processes (for crash tests); all are
stopped after the test. `env` overrides settings for that worker (say a low SEND_RATE_PER_SECOND).""")
start_gunicorn = process_fixture(GunicornProcess, "web",
                                 "Serve the app with a real gunicorn (stopped after the test); `env` overrides settings.")


# -- a real browser against a live server

@pytest.fixture
def live_server(app):
    """The app served over HTTP on a free local port, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(executable):
        pytest.fail(f"Chromium not found at {executable}: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


# -- signing in: one way, as the tutorial's `auth` fixture

class Auth:
    """Make the account and sign in through the real sign-in page, with or without the second factor."""

    def __init__(self, app, client) -> None:
        self.app, self.client = app, client

    def create(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, role: str | None = None,
               may_write_newsletter: bool = False) -> str:
        """The account, with `role` when given (made or reset through the service `create-admin` calls); its address."""
        from newsletter.accounts import users
        from newsletter.core.extensions import db

        # Inside the test's own app context, its session writes (a second one would wait on SQLite's lock).
        with nullcontext() if has_app_context() else self.app.app_context():
            person = users.set_admin(email, password, role=role)
            person.may_write_newsletter = may_write_newsletter
            db.session.commit()
        return email

    def on(self, app) -> "Auth":
        """The same, for another app (one `app_factory` made with other settings, CSRF on say) and a client of it."""
        return Auth(app, app.test_client())

    def sign_in(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD, client=None, **request):
        """Post the sign-in form (the password step), with the page's CSRF token when the app checks it; the response."""
        client = client or self.client
        data = {"email": email, "password": password}
        if self.app.config["WTF_CSRF_ENABLED"]:
            data["csrf_token"] = csrf_token(client, "/admin/login")
        return client.post("/admin/login", data=data, **request)

    def turn_on_second_factor(self, client=None) -> tuple[str, list[str]]:
        """Turn two-step sign-in on through the pages (signed in); the secret and the recovery codes shown."""
        client = client or self.client
        assert client.post("/admin/two-factor/start").status_code == 302
        page = client.get("/admin/two-factor").get_data(as_text=True)
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
        response = client.post("/admin/two-factor", data={"code": pyotp.TOTP(secret).now()})
        assert response.status_code == 200
        return secret, re.findall(r"<code>([0-9a-f]{5}-[0-9a-f]{5})</code>", response.get_data(as_text=True))

    def login(self, client=None, second_factor: bool = False, role: str | None = None, email: str = ADMIN_EMAIL,
              may_write_newsletter: bool = False):
        """Make the account (the therapist, an owner, unless `role` says otherwise) and sign in with it (both
        steps, when `second_factor`); the client."""
        client = client or self.client
        self.create(email, role=role, may_write_newsletter=may_write_newsletter)
        assert self.sign_in(email, client=client).status_code == 302, "the test admin could not sign in"
        if second_factor:
            secret, _ = self.turn_on_second_factor(client)
            client.post("/admin/logout")
            assert self.sign_in(email, client=client).status_code == 302
            assert client.post("/admin/login/code", data={"code": next_code(secret)}).status_code == 302
        return client

    def stay_signed_in(self, client=None):
        """Sign in again when an earlier request (a previous hypothesis example) signed the therapist out; the client.
        Asks her own two-step page, which every signed-in person reaches: the dashboard costs ten times as much."""
        client = client or self.client
        with nullcontext() if has_app_context() else self.app.app_context():
            if client.get("/admin/two-factor").status_code != 200:
                self.login(client)
        return client

    def sign_in_browser(self, page, live_server: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD):
        """Sign the browser in through the page; the page, on the dashboard."""
        page.goto(f"{live_server}/admin/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server}/admin/")
        return page


@pytest.fixture
def auth(app, client) -> Auth:
    return Auth(app, client)


@pytest.fixture
def admin(auth) -> str:
    """The therapist's account exists; its address."""
    return auth.create()


@pytest.fixture
def admin_client(auth, client):
    """A client signed in as the therapist."""
    return auth.login(client)


@pytest.fixture
def admin_page(auth, live_server, page):
    """The browser signed in as the therapist."""
    auth.create()
    return auth.sign_in_browser(page, live_server)


@pytest.fixture(scope="module")
def cert_server():
    server = CertServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def sendgrid_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def every_provider(app_factory, sendgrid_key, cert_server):
    """The app with every provider configured, a reader, and the posting helpers' keys."""
    public = sendgrid_key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    app = app_factory(MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY, WEBHOOK_USERNAME=POSTMARK_LOGIN[0],
                      WEBHOOK_PASSWORD=POSTMARK_LOGIN[1], SES_SNS_TOPIC_ARNS=TOPIC,
                      SNS_URL_PATTERN=r"http://127\.0\.0\.1:\d+",
                      SENDGRID_WEBHOOK_PUBLIC_KEY=base64.b64encode(public).decode())
    with app.app_context():
        add_reader()
        yield app


@pytest.fixture(scope="session")
def dns_zone():
    """A DNS server on 127.0.0.1 (UDP and TCP on one port) answering from a Zone."""
    zone = Zone()
    port = free_port()
    logger = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-error,-data", logf=lambda _: None)
    servers = [DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp, logger=logger, handler=UDPHandler)
               for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    zone.address = f"127.0.0.1:{port}"
    yield zone
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def dkim_key() -> tuple[str, str]:
    """A 2048-bit key as PEM, and its public half as a DKIM record's p= value."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(public).decode()


@pytest.fixture
def zone(dns_zone, dkim_key):
    """A domain that passes everything: example.org sending through smtp.mailgun.org."""
    dns_zone.records.clear()
    dns_zone.silent.clear()
    domain_check._cache.clear()
    dns_zone.set("example.org", "TXT", "google-site-verification=abc", "v=spf1 include:mailgun.org ~all")
    dns_zone.set("news._domainkey.example.org", "TXT", f"v=DKIM1; k=rsa; p={dkim_key[1]}")
    dns_zone.set("_dmarc.example.org", "TXT", "v=DMARC1; p=quarantine; rua=mailto:hello@example.org")
    dns_zone.set("example.org", "MX", "10 mxa.mailgun.org", "20 mxb.mailgun.org")
    return dns_zone


_COMMON = {"deadline": None, "derandomize": False, "print_blob": True,
           "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large, HealthCheck.filter_too_much]}
# Hypothesis: the short `ci` profile unless HYPOTHESIS_PROFILE names another (README: the long `fuzz` run).
hypothesis_settings.register_profile("ci", max_examples=60, **_COMMON)  # per form and database
hypothesis_settings.register_profile("fuzz", max_examples=5000, **_COMMON)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def empty_database_url(database, tmp_path):
    """A new, empty database of this session's kind (not the one create_all filled)."""
    backend, url = database
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/migrated.sqlite"
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"migrated_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def upgrade_from(settings, empty_database_url, monkeypatch):
    """`upgrade_from(revision, old_rows)`: the app on a new database that held `old_rows()` at `revision` and was
    then upgraded to head, as an installation is (tests.helpers.upgraded_from)."""
    monkeypatch.setenv("INSTANCE_PATH", settings["INSTANCE_PATH"])
    with ExitStack() as apps:
        yield lambda revision, old_rows: apps.enter_context(
            upgraded_from(settings, empty_database_url, revision, old_rows))
