"""One rule, one place: every URL that carries a token goes through web.token_route, and so is kept out of
every log, never cached, never sent on as a Referer, and refused once expired or revoked.

The list of token routes comes from app.url_map (any rule argument named like "token"), so a token route
added later without token_route fails here. A token can also come in the query string, under any name: so
every rule is requested, by every method, with a query string that holds a token under whatever name its view
asks for, and every token the app reads (each goes through itsdangerous with a "newsletter." salt, in
core/tokens.py alone) must be read inside a token_route view, or by a page QUERY_TOKEN_PAGES lists with its reason.
"""
from __future__ import annotations

import ast
import logging
import time
from datetime import timedelta

import pytest
import requests
from flask import current_app, has_request_context, request
from itsdangerous import Signer, TimestampSigner
from sqlalchemy import select
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.utils import cached_property

from newsletter.core import logredact, tokens
from newsletter.core.extensions import db
from newsletter.inquiries import booking, states, waitlist
from newsletter.models import Consultation, Inquiry, Issue, WaitlistEntry
from tests.routes import make_rows, token_kind, url_for_rule
from tests.support import ROOT, wait_for


def token_rules(app) -> list:
    return [rule for rule in app.url_map.iter_rules() if any(map(logredact.is_token_argument, rule.arguments))]


def test_there_are_token_routes_to_check(app):
    assert {rule.rule for rule in token_rules(app)} >= {
        "/confirm/<token>", "/unsubscribe/<token>", "/unsubscribe/<token>/resubscribe", "/consultation/<token>",
        "/waitlist/<token>"}


def test_every_token_route_is_registered(app):
    for rule in token_rules(app):
        assert getattr(app.view_functions[rule.endpoint], "is_token_route", False), \
            f"{rule.rule} ({rule.endpoint}) carries a token: route it with web.token_route"
        assert rule.rule in logredact.rules(), f"{rule.rule}: its token is not redacted from the logs"


# -- a token in the query string: read only inside a token route, or by a page listed here with its reason

# endpoint: (the query parameter that carries its token, why it is not a token route)
QUERY_TOKEN_PAGES = {
    "public.issue_page": ("preview", "a test copy's 'View in browser' link: /issues/<slug> is the public page of a sent "
                                     "issue without it; the parameter is in logredact.QUERY_TOKENS, so it is redacted "
                                     "from every log and security.is_token_page makes the page no-store, no-referrer"),
}


class EveryName(ImmutableMultiDict):
    """A query string that holds `token` under every name a view asks for (besides what the URL carries);
    the names asked are noted in `asked`."""

    token: str
    asked: set[str]

    def __contains__(self, key) -> bool:
        self.asked.add(key)
        return True

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key) if dict.__contains__(self, key) else self.token

    def getlist(self, key, type=None):
        self.asked.add(key)
        return super().getlist(key, type) if dict.__contains__(self, key) else [self.token]


def offer_a_token_under_every_name(app, monkeypatch, token: str) -> set[str]:
    """From now on, request.args holds `token` under any name; returns the set of the names asked."""
    asked = set()
    parsed = app.request_class.args

    def args(request) -> EveryName:
        offered = EveryName(parsed.__get__(request, type(request)))
        offered.token, offered.asked = token, asked
        return offered

    monkeypatch.setattr(app.request_class, "args", cached_property(args, "args"))
    return asked


def record_token_reads(monkeypatch) -> dict[bool, dict[str, set[str]]]:
    """From now on, every check of one of our tokens' signatures (the app's salts start "newsletter.") made while
    answering a request is noted: {inside a token route: {endpoint: {method}}}."""
    reads = {True: {}, False: {}}
    unsign = Signer.unsign

    def noting_unsign(signer, value):
        if signer.salt.startswith(b"newsletter.") and has_request_context():
            view = current_app.view_functions.get(request.endpoint)
            reads[getattr(view, "is_token_route", False)].setdefault(request.endpoint, set()).add(request.method)
        return unsign(signer, value)

    monkeypatch.setattr(Signer, "unsign", noting_unsign)  # TimestampSigner.unsign calls it too
    return reads


def test_a_token_is_read_only_by_a_token_route_or_a_listed_query_token_page(auth, app, client, monkeypatch):
    rows = make_rows(app)
    with app.app_context():
        auth.login(client)
        draft_slug = db.session.get(Issue, rows.values["issue_id"]).slug  # a page only a preview token shows
    asked = offer_a_token_under_every_name(app, monkeypatch, rows.tokens["preferences"])
    reads = record_token_reads(monkeypatch)
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if rule.endpoint.startswith("admin."):
                auth.stay_signed_in(client)  # a POST before may have signed her out
            client.open(url_for_rule(rule, rows), method=method)
    client.get(f"/issues/{draft_slug}")

    assert reads[True], "the token routes' reads were not seen: the check sees nothing"
    assert reads[False].keys() - QUERY_TOKEN_PAGES.keys() == set(), \
        "these read a token outside web.token_route: carry it in the path (<token>), routed with web.token_route"
    assert reads[False].keys() == QUERY_TOKEN_PAGES.keys(), "a listed page that reads no token any more"
    for endpoint, (name, _) in QUERY_TOKEN_PAGES.items():
        assert name in logredact.QUERY_TOKENS and name in asked, f"{endpoint}: ?{name}= is not redacted"


def test_tokens_are_signed_and_read_in_core_tokens_alone():
    """So the check above sees every token read: nothing else signs with itsdangerous."""
    importers = []
    for path in [*(ROOT / "newsletter").rglob("*.py"), *(ROOT / "worker").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if any(name.split(".")[0] == "itsdangerous" for name in names):
                importers.append(str(path.relative_to(ROOT)))
    assert importers == ["newsletter/core/tokens.py"]


def requests_to_every_token_route(app) -> list[tuple[str, str, str]]:
    """(method, url, token) for every token rule and each method it answers, with live tokens."""
    rows = make_rows(app)
    return [(method, url_for_rule(rule, rows), rows.tokens[token_kind(rule)])
            for rule in token_rules(app) for method in sorted(rule.methods - {"OPTIONS"})]


def test_gunicorn_logs_no_token_and_every_token_page_is_private(app, start_gunicorn):
    server = start_gunicorn(workers=1)
    sent = requests_to_every_token_route(app)
    for method, url, token in sent:
        response = requests.request(method, server.url + url + "?again=1", allow_redirects=False, timeout=30,
                                    headers={"Referer": server.url + url})
        assert response.status_code < 500, f"{method} {url}: {response.status_code}"
        assert response.headers["Cache-Control"] == "no-store", f"{method} {url}"
        assert response.headers["Referrer-Policy"] == "no-referrer", f"{method} {url}"
    log = wait_for(lambda: server.log_text().count("[token]") >= 2 * len(sent) and server.log_text(), timeout=30)
    for _, url, token in sent:
        assert token not in log and token[:16] not in log, f"{url} left its token in the gunicorn log"


def test_the_app_and_its_libraries_log_no_token(app, caplog):
    sent = requests_to_every_token_route(app)
    with caplog.at_level(logging.DEBUG):
        for method, url, token in sent:
            app.logger.warning("a visitor came from %s", "http://newsletter.test" + url)
            logging.getLogger("newsletter.somewhere").info(f"{method} {url} failed")
            logging.getLogger("werkzeug").info('"%s %s HTTP/1.1" %s', method, url, 200)
    assert caplog.text.count("[token]") >= 3 * len(sent)
    for _, url, token in sent:
        assert token not in caplog.text, f"{url} left its token in the app log"


def test_a_test_copys_preview_token_is_kept_out_of_the_log_and_the_referrer(app, client, caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("werkzeug").info('"GET /issues/a-slug?preview=SECRET.abc HTTP/1.1" 200')
    assert "SECRET" not in caplog.text and "preview=[token]" in caplog.text
    response = client.get("/issues/a-slug?preview=SECRET.abc")
    assert response.headers["Referrer-Policy"] == "no-referrer" and response.headers["Cache-Control"] == "no-store"


# -- expiry and revocation

def offered(app, email: str = "dana@example.org") -> tuple[int, str]:
    """An inquiry with consultation hours set and a booking link; (inquiry id, link path)."""
    from newsletter.accounts import practice
    from tests.helpers import ONE_SLOT_A_DAY, submit

    with app.app_context():
        practice.ensure_profile().consultation_hours = ONE_SLOT_A_DAY
        db.session.commit()
        inquiry_id = submit(email=email).inquiry_id
        return inquiry_id, booking.booking_url(db.session.get(Inquiry, inquiry_id)).removeprefix(
            app.extensions["settings"].base_url)


def first_slot(app) -> str:
    with app.app_context():
        return booking.open_slots()[0].strftime("%Y-%m-%dT%H:%M")


def consultations(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Consultation)).all())


def assert_refused(response, words: str = "") -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 410, response.status_code
    assert "done its job" in page or "expired" in page
    assert words in page


def test_a_booking_link_dies_once_used(app, client):
    _, path = offered(app)
    assert client.post(path, data={"slot": first_slot(app)}).status_code == 200

    assert_refused(client.get(path), "done its job")
    assert_refused(client.post(path, data={"slot": first_slot(app)}))
    assert consultations(app) == 1


def test_a_booking_link_dies_once_the_consultation_is_cancelled(app, client):
    inquiry_id, path = offered(app)
    _, other_path = offered(app, "dana.again@example.org")
    with app.app_context():
        early_link = booking.booking_url(db.session.get(Inquiry, inquiry_id)).removeprefix(app.extensions["settings"].base_url)
    client.post(path, data={"slot": first_slot(app)})
    with app.app_context():
        booking.cancel(db.session.scalar(select(Consultation)), None)
        db.session.commit()

    assert_refused(client.get(path))
    assert_refused(client.post(early_link, data={"slot": first_slot(app)}))  # made before, never used
    assert consultations(app) == 0
    assert client.get(other_path).status_code == 200  # another person's link is untouched
    time.sleep(1.1)  # links carry their time to the second
    with app.app_context():
        fresh = booking.booking_url(db.session.get(Inquiry, inquiry_id)).removeprefix(app.extensions["settings"].base_url)
    assert client.post(fresh, data={"slot": first_slot(app)}).status_code == 200  # a new link, sent since, books


def test_a_booking_link_dies_once_its_inquiry_is_closed(app, client):
    inquiry_id, path = offered(app)
    with app.app_context():
        states.transition(db.session.get(Inquiry, inquiry_id), "refer", None)
        db.session.commit()

    assert_refused(client.get(path))
    assert_refused(client.post(path, data={"slot": first_slot(app)}))
    assert consultations(app) == 0


def signed_long_ago(app, monkeypatch, max_age, make_url) -> str:
    """The path of a link `make_url` signs a minute past `max_age` ago."""
    long_ago = int(time.time() - max_age.total_seconds() - 60)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: long_ago)
    with app.app_context():
        path = make_url().removeprefix(app.extensions["settings"].base_url)
    monkeypatch.undo()
    return path


def test_an_expired_booking_link_is_refused_kindly(app, client, monkeypatch):
    inquiry_id, _ = offered(app)
    path = signed_long_ago(app, monkeypatch, booking.TOKEN_MAX_AGE,
                           lambda: booking.booking_url(db.session.get(Inquiry, inquiry_id)))

    response = client.get(path)
    assert response.status_code == 410 and "Booking links work for three weeks" in response.get_data(as_text=True)


def test_a_forged_token_is_not_found(app, client):
    _, path = offered(app)
    for forged in (path[:-3] + "abc", "/waitlist/" + path.rsplit("/", 1)[1], "/consultation/x"):
        response = client.get(forged)
        assert response.status_code == 404 and "no longer works" in response.get_data(as_text=True)


def waiting(app) -> tuple[int, str]:
    from tests.helpers import submit

    with app.app_context():
        inquiry_id = submit(email="waiting@example.org", waitlist=True).inquiry_id
        entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.inquiry_id == inquiry_id))
        return entry.id, waitlist.answer_url(entry).removeprefix(app.extensions["settings"].base_url)


@pytest.mark.parametrize("answer", ["keep", "leave"])
def test_a_waitlist_link_dies_once_answered(app, client, answer):
    entry_id, path = waiting(app)
    assert client.post(path, data={"answer": answer}).status_code == 200

    assert_refused(client.get(path))
    assert_refused(client.post(path, data={"answer": "leave"}))
    with app.app_context():
        assert (db.session.get(WaitlistEntry, entry_id).left_at is None) == (answer == "keep")


def test_a_waitlist_link_dies_once_the_place_ends(app, client):
    entry_id, path = waiting(app)
    with app.app_context():
        waitlist.invite(db.session.get(WaitlistEntry, entry_id), None)
        db.session.commit()

    assert_refused(client.get(path))
    assert_refused(client.post(path, data={"answer": "keep"}))


def test_a_waitlist_link_expires(app, client, monkeypatch):
    entry_id, _ = waiting(app)
    path = signed_long_ago(app, monkeypatch, waitlist.TOKEN_MAX_AGE,
                           lambda: waitlist.answer_url(db.session.get(WaitlistEntry, entry_id)))

    assert_refused(client.get(path), "expired")
    assert waitlist.TOKEN_MAX_AGE >= timedelta(days=waitlist.ANSWER_DAYS)


def test_a_signed_token_that_only_looks_like_an_id_names_nothing(app, client):
    inquiry_id, _ = offered(app)
    with app.app_context():
        forged = [tokens.make(purpose, payload) for purpose in (booking.TOKEN_PURPOSE, waitlist.TOKEN_PURPOSE)
                  for payload in (True, float(inquiry_id), str(inquiry_id), 2**63, [True, "x"])]
    for token in forged:
        assert client.get(f"/consultation/{token}").status_code == 404
        assert client.get(f"/waitlist/{token}").status_code == 404
