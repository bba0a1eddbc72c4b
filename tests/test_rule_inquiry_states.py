"""One status everywhere, and actions that mail someone ask first.

Every (status, action) pair of the state table is tried through the real routes: an allowed one lands
the same label on the inquiry page, the list and the dashboard; a refused one changes nothing and says
why. Then every admin POST route is run: none that queues mail to someone other than the practice does
so before the confirmation step. The model refuses a stored inquiry's status set by the app's code anywhere but in
states.transition: shown here directly, on every POST route (the admin's, the public ones) and on bulk updates."""
from __future__ import annotations

import ast
import html
import re
from functools import partial
from html.parser import HTMLParser
from itertools import product

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import delete, func, select
from werkzeug.datastructures import MultiDict

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import booking, states
from newsletter.models import (
    Consultation,
    Inquiry,
    InquiryAccess,
    InquiryNote,
    InquiryResponse,
    OutgoingMail,
    WaitlistEntry,
    utcnow,
)
from newsletter.models.inquiries import StatusNotByTransition
from tests.helpers import ADMIN_EMAIL, CONFIRMED, EVERY_DAY, PRACTICE, hostile_text
from tests.routes import make_rows, url_for_rule
from tests.support import ROOT


def _forget_inquiries() -> None:
    for model in (InquiryAccess, InquiryNote, InquiryResponse, Consultation, WaitlistEntry, OutgoingMail, Inquiry):
        db.session.execute(delete(model))
    db.session.commit()


def _world(status: str = "contacted", *, spam: bool = False) -> Inquiry:
    """One inquiry in `status`, with a booked consultation and a place on the waitlist; the practice takes
    clients and offers consultation hours."""
    _forget_inquiries()
    profile = practice.ensure_profile()
    profile.accepting_clients, profile.consultation_hours = True, EVERY_DAY
    inquiry = Inquiry(name="Dana Reyes", email="dana@example.com", message="Hello.",
                      status=status, spam=spam, waitlist=True, forwarded_at=None if spam else utcnow())
    db.session.add(inquiry)
    db.session.flush()
    db.session.add(WaitlistEntry(inquiry_id=inquiry.id))
    db.session.commit()
    return inquiry


def _book(client, inquiry_id: int):
    path = booking.booking_url(db.session.get(Inquiry, inquiry_id)).split("/", 3)[3]
    slot = booking.open_slots()[0].strftime("%Y-%m-%dT%H:%M")
    return client.post(f"/{path}", data={"slot": slot})


def _with_consultation(inquiry: Inquiry) -> None:
    db.session.add(Consultation(inquiry_id=inquiry.id, starts_at=booking.open_slots()[0]))
    db.session.commit()


def _entry(inquiry_id: int) -> int:
    return db.session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.inquiry_id == inquiry_id))


def _move(client, inquiry_id: int, action: str):
    return client.post(f"/admin/inquiries/{inquiry_id}/status", data={"action": action})


# How each action is done by a person, through the routes: (client, inquiry id) -> the final response.
ROUTES = {
    "reply": lambda c, i: c.post(f"/admin/inquiries/{i}/reply", data={"body": "Hello.", **CONFIRMED}),
    "call": lambda c, i: c.post(f"/admin/inquiries/{i}/call", data={"note": ""}),
    "book": _book,
    "cancel_consultation": lambda c, i: c.post(f"/admin/inquiries/{i}/consultation/cancel", data=CONFIRMED),
    "invite": lambda c, i: c.post(f"/admin/waitlist/{_entry(i)}/invite", data=CONFIRMED),
    "spam": lambda c, i: c.post(f"/admin/inquiries/{i}/spam", data={"action": "spam"}),
    "not_spam": lambda c, i: c.post(f"/admin/inquiries/{i}/spam", data={"action": "not_spam", **CONFIRMED}),
    **{action: partial(_move, action=action) for action in states.MANUAL_ACTIONS},
}


def _shown_status(client, inquiry_id: int, spam: bool) -> tuple[str, str, dict[str, int]]:
    """The status label on the inquiry page, in its list row, and the dashboard's counts by label."""
    detail = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
    listing = client.get("/admin/inquiries" + ("?folder=spam" if spam else "")).get_data(as_text=True)
    dashboard = client.get("/admin/").get_data(as_text=True)
    on_page = re.search(r'Status: <strong data-status="[a-z_]+">([^<]+)</strong>', detail).group(1)
    in_list = re.search(r'<td data-status="[a-z_]+">([^<]+)</td>', listing).group(1)
    counts = {html.unescape(label): int(n) for label, n in re.findall(r'data-status="([^"]+)">(\d+)<', dashboard)}
    return html.unescape(on_page), html.unescape(in_list), counts


def _prepare(app, status: str, action: str) -> tuple[int, bool, str, int]:
    """The world for trying `action` from `status`: the inquiry's id, whether the table allows it, the refusal
    message it would get, and how many mails are queued so far."""
    with app.app_context():
        inquiry = _world(status, spam=action == "not_spam")
        if action == "cancel_consultation":
            _with_consultation(inquiry)
        return (inquiry.id, states.allows(inquiry, action), states.refusal(inquiry, action),
                db.session.scalar(select(func.count()).select_from(OutgoingMail)))


def test_every_action_from_every_status_lands_one_label_everywhere_or_is_refused_with_a_message(auth, app, client):
    assert set(ROUTES) == set(states.RULES), "every action of the state table has a route in this test"
    with app.app_context():
        auth.login(client)
    for status, action in product(states.STATUS_LABELS, states.RULES):
        inquiry_id, allowed, refusal, mails_before = _prepare(app, status, action)
        case = f"{action} from {status}"

        with app.app_context():
            response = ROUTES[action](client, inquiry_id)
        page = client.get(response.headers["Location"]).get_data(as_text=True) if response.status_code == 302 \
            else response.get_data(as_text=True)

        with app.app_context():
            stored = db.session.get(Inquiry, inquiry_id)
            if not allowed:
                # A refused booking is a dead link on the public page (410); the admin's refusals are messages.
                assert (response.status_code == 410 if action == "book"
                        else html.escape(refusal, quote=False) in page), case
                assert stored.status == status, case
                assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == mails_before, case
                continue
            target, spam = states.TRANSITIONS[(status, action)], stored.spam
            assert stored.status == target, case
        label = states.STATUS_LABELS[target]
        on_page, in_list, counts = _shown_status(client, inquiry_id, spam)
        assert on_page == in_list == label, case
        assert counts == {name: int(name == label and not spam) for name in states.STATUS_LABELS.values()}, case


def test_cancelling_a_consultation_moves_the_inquiry_back_everywhere(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = _world("contacted").id
        assert _book(client, inquiry_id).status_code == 200
    assert _shown_status(client, inquiry_id, False)[:2] == ("Consultation scheduled",) * 2

    asked = client.post(f"/admin/inquiries/{inquiry_id}/consultation/cancel")
    assert "Cancel the consultation on" in asked.get_data(as_text=True)
    assert _shown_status(client, inquiry_id, False)[0] == "Consultation scheduled", "nothing until she confirms"
    client.post(f"/admin/inquiries/{inquiry_id}/consultation/cancel", data=CONFIRMED)

    on_page, in_list, counts = _shown_status(client, inquiry_id, False)
    assert on_page == in_list == "Contacted" and counts["Contacted"] == 1 and counts["Consultation scheduled"] == 0


def _mail_to_someone_else() -> int:
    """Queued mail to anyone but the practice (the recipient is encrypted: compared in Python)."""
    return sum(row.recipient not in (PRACTICE, ADMIN_EMAIL) for row in db.session.scalars(select(OutgoingMail)))


# What a form on any admin page might carry: enough for each inquiry route to do its work.
ANY_FORM = {"body": "Hello there.", "note": "A note.", "action": "not_spam", "quote_inquiry": "y",
            "booking_link": "y", "close_as": "referred"}


def test_every_admin_post_that_mails_someone_asks_first(auth, app, client):
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.") and "POST" in rule.methods]
    mailing = set()
    for rule, spam, confirmed in product(rules, (False, True), (False, True)):
        with app.app_context():
            inquiry = _world("contacted", spam=spam)
            _with_consultation(inquiry)
            auth.stay_signed_in(client)  # a route before may have signed her out
            ids = {"inquiry_id": inquiry.id, "entry_id": _entry(inquiry.id)}
            path = rule.build({name: ids.get(name, 1) for name in rule.arguments}, append_unknown=False)[1]

        client.post(path, data={**ANY_FORM, **(CONFIRMED if confirmed else {})})

        with app.app_context():
            if not confirmed:
                assert _mail_to_someone_else() == 0, f"{rule.rule} mailed someone without asking first"
            elif _mail_to_someone_else():
                mailing.add(rule.endpoint)
    # The run found the routes that mail an inquirer (so the check above is not empty).
    assert {"admin.inquiry_reply", "admin.consultation_cancel", "admin.waitlist_invite",
            "admin.inquiry_spam"} <= mailing


class _HiddenFields(HTMLParser):
    """The hidden fields of the confirmation page, as a browser would send them back."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden" and attrs.get("name") != "csrf_token":
            self.fields.append((attrs["name"], attrs.get("value") or ""))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=hostile_text(60), body=hostile_text(300))
def test_hostile_moves_are_refused_and_a_confirmed_reply_goes_out_as_typed(auth, app, client, action, body):
    with app.app_context():
        auth.stay_signed_in(client)
        inquiry_id = _world("contacted").id

    moved = client.post(f"/admin/inquiries/{inquiry_id}/status", data={"action": action})
    asked = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"body": body})

    assert moved.status_code in (302, 400) and asked.status_code in (200, 400)
    with app.app_context():
        status = db.session.get(Inquiry, inquiry_id).status
        assert status == states.TRANSITIONS.get(("contacted", action), "contacted")
        assert db.session.scalar(select(func.count()).select_from(InquiryResponse)) == 0, "nothing before she confirms"
    if asked.status_code == 400:
        return
    page = _HiddenFields()
    page.feed(asked.get_data(as_text=True))
    sent = client.post(f"/admin/inquiries/{inquiry_id}/reply", data=MultiDict(page.fields))
    assert sent.status_code == 302
    with app.app_context():
        [response] = db.session.scalars(select(InquiryResponse)).all()
        assert response.body == body.replace("\x00", "").strip()


# -- the status changes through states.transition alone

def test_a_stored_inquirys_status_changes_through_transition_alone(app):
    with app.app_context():
        inquiry = _world("contacted")
        with pytest.raises(StatusNotByTransition, match="states.transition alone"):
            inquiry.status = "client"
        assert inquiry.status == "contacted"
        states.transition(inquiry, "close_client", None)
        db.session.commit()
        assert db.session.get(Inquiry, inquiry.id).status == "client"
        made = Inquiry(name="Robin", email="robin@example.com", status="referred")  # made with its status
        made.status = "new"  # and changed before it is stored
        assert made.status == "new"


def test_only_the_transition_table_uses_the_way_past_the_models_check():
    sources = [*(ROOT / "newsletter").rglob("*.py"), *(ROOT / "worker").rglob("*.py")]
    users = [str(path.relative_to(ROOT)) for path in sources if "changing_status" in path.read_text()]
    assert sorted(users) == ["newsletter/inquiries/states.py", "newsletter/models/inquiries.py"]


# A form for any public POST route: enough for each to do its work (book, answer the waitlist, sign up, write).
PUBLIC_FORM = {"name": "Robin", "email": "robin@example.com", "message": "Hello.", "preferred_contact": "email",
               "answer": "leave", "consent": "y", **CONFIRMED}


def test_no_public_post_route_sets_a_status_but_through_transition(app, client):
    """The admin's POST routes are all run above; here every other one, with live tokens: a status set outside
    states.transition raises StatusNotByTransition, and the test client passes it on."""
    rows = make_rows(app)
    with app.app_context():
        slot = booking.open_slots()[0].strftime("%Y-%m-%dT%H:%M")
    ran = []
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and not rule.endpoint.startswith("admin."):
            response = client.post(url_for_rule(rule, rows), data={**PUBLIC_FORM, "slot": slot})
            assert response.status_code < 500, f"{rule.rule}: {response.status_code}"
            ran.append(rule.endpoint)
    assert {"public.consultation_book", "public.waitlist_answer_submit", "public.contact_submit"} <= set(ran)


def _writes_status(node: ast.Call) -> bool:
    """Whether a `.values(...)` call sets status, by keyword or in a dict."""
    return any(keyword.arg == "status" for keyword in node.keywords) or any(
        isinstance(arg, ast.Dict) and any(isinstance(key, ast.Constant) and key.value == "status" for key in arg.keys)
        for arg in node.args)


def _on_inquiries(node: ast.AST) -> bool:
    """Whether a statement chain starts with update(Inquiry) (or sa.update(Inquiry))."""
    while isinstance(node, (ast.Call, ast.Attribute)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "update":
            return any(isinstance(arg, ast.Name) and arg.id == "Inquiry" for arg in node.args)
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def test_no_bulk_update_in_the_app_writes_an_inquirys_status():
    """The model's check sees attributes, not UPDATE statements: none of the app's may write the status."""
    found = []
    for path in [*(ROOT / "newsletter").rglob("*.py"), *(ROOT / "worker").rglob("*.py")]:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "values" \
                    and _on_inquiries(node.func.value) and _writes_status(node):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        sql = re.finditer(r"UPDATE\s+inquiries\b[^;]*?\bSET\b[^;]*?\bstatus\b", source, re.I)
        found += [f"{path.relative_to(ROOT)}: {match.group(0)[:40]}" for match in sql]
    assert found == []
