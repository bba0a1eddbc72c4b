"""A group practice works a week of inquiries (issue #22): an owner, an intake coordinator, two clinicians
(Maya and Leo) and a newsletter editor, nobody seeing what is not theirs and no inquiry passing its reply-by
day unnoticed.

Monday four inquiries arrive: two for Maya, one for Leo, one for whoever fits (the coordinator's). Tuesday
the coordinator hands hers to Leo, Maya hands one of hers to Leo and answers the other, and one more for
whoever fits arrives. Wednesday, the day promised for Monday's, Leo is reminded of his three and answers two.
Thursday the coordinator is reminded of Tuesday's, and hears that Leo's third is past its day; Friday the
owner hears that the coordinator's own is past its day. At 10:00 each day the scheduled jobs run (run-due);
after each day every person's pages and every reminder are checked.

In a second week the owner removes the coordinator on Tuesday and invites a new one, who has not joined yet:
nothing new goes to either of them, and what the removed coordinator left reaches the owner.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.inquiries import business_days, intake
from newsletter.models import AdminUser, Inquiry, utcnow
from tests.helpers import ADMIN_EMAIL, CONFIRMED, FORM, PRACTICE, group_practice, queued, run_due, text_of

MAYA, LEO, COORDINATOR = "maya@newsletter.test", "leo@newsletter.test", "intake@newsletter.test"
EDITOR, NEW_COORDINATOR = "editor@newsletter.test", "new.intake@newsletter.test"
ROLES = {COORDINATOR: "coordinator", MAYA: "clinician", LEO: "clinician", EDITOR: "editor"}
PROFILES = {MAYA: ("Maya López, LMFT", "maya-lopez"), LEO: ("Leo Park, LPC", "leo-park")}


def _group(app, auth, owner) -> dict:
    """The owner, the coordinator (whoever fits goes to her), Maya and Leo with profiles, and an editor, each
    signed in on their own client; the clients by address."""
    return group_practice(app, auth, owner, ROLES, PROFILES)


def _week(app) -> list[date]:
    """Next week's Monday to Friday, in the practice's timezone."""
    with app.app_context():
        today = business_days.practice_calendar().local_date(utcnow())
    return [today + timedelta(days=7 - today.weekday() + n) for n in range(5)]


def _arrive(app, monkeypatch, day: date, sender: str, clinician: str = "") -> int:
    """An inquiry through the contact page at 09:00 on `day` (so its reply-by day counts from then), for the
    clinician of this web name or whoever fits; its id."""
    with app.app_context():
        moment = datetime.combine(day, time(9), tzinfo=business_days.practice_calendar().tz)
    monkeypatch.setattr(intake, "utcnow", lambda: moment.astimezone(UTC).replace(tzinfo=None))
    response = app.test_client().post("/contact", data={**FORM, "email": sender, "clinician": clinician,
                                                        "message": f"{FORM['message']} ({sender})"})
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        return db.session.scalar(select(func.max(Inquiry.id)))


def _id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(AdminUser.id).where(AdminUser.email == email))


def _inquiries(app) -> dict[int, tuple[str | None, date, bool]]:
    """Every inquiry: (its assignee's address or None, its reply-by day, whether it is answered)."""
    with app.app_context():
        rows = db.session.execute(select(Inquiry.id, AdminUser.email, Inquiry.reply_by, Inquiry.first_response_at)
                                  .outerjoin(AdminUser, AdminUser.id == Inquiry.assignee_id))
        return {row[0]: (row[1], row[2], row[3] is not None) for row in rows}


def _reminders(app) -> list[tuple[str, bool, frozenset[int]]]:
    """Every reply-by reminder so far: (to, whether it says "past the day", the inquiries it links)."""
    return [(mail["To"].addresses[0].addr_spec, "past the day" in mail["Subject"],
             frozenset(int(n) for n in re.findall(r"/admin/inquiries/(\d+)", text_of(mail))))
            for mail in queued("inquiry_nudge", app=app)]


def _hand(app, client, inquiry_id: int, to: str) -> None:
    response = client.post(f"/admin/inquiries/{inquiry_id}/assign",
                           data={"assignee": str(_id(app, to)), "note": "Evenings suit them.", **CONFIRMED})
    assert response.status_code == 302 and _inquiries(app)[inquiry_id][0] == to


def _answer(client, inquiry_id: int, by_call: bool = False) -> None:
    if by_call:
        assert client.post(f"/admin/inquiries/{inquiry_id}/call", data={}).status_code == 302
    else:
        response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"body": "Thank you.", **CONFIRMED})
        assert response.status_code == 302


def _listed(client) -> set[int]:
    page = client.get("/admin/inquiries").get_data(as_text=True)
    return {int(n) for n in re.findall(r'href="/admin/inquiries/(\d+)"', page)}


def _assert_each_sees_only_theirs(app, clients: dict) -> None:
    """A clinician lists and opens only what is assigned to them (another's answers 404, as a missing one);
    the coordinator and the owner all; the editor none (403)."""
    inquiries = _inquiries(app)
    for email, client in clients.items():
        if email == EDITOR:
            assert client.get("/admin/inquiries").status_code == 403
            assert {client.get(f"/admin/inquiries/{n}").status_code for n in inquiries} == {403}
            continue
        sees_all = ROLES.get(email) != "clinician"  # the owner and the coordinator
        theirs = {n for n, (assignee, _, _) in inquiries.items() if sees_all or assignee == email}
        assert _listed(client) == theirs, email
        for n in inquiries:
            assert client.get(f"/admin/inquiries/{n}").status_code == (200 if n in theirs else 404), (email, n)


def _assert_reminded_as_promised(app, today: date) -> None:
    """Each unanswered inquiry whose day came was reminded once, to its assignee; each whose day passed was told
    once to someone else (this week nothing is answered after its day passed); the editor gets no mail."""
    inquiries, reminders = _inquiries(app), _reminders(app)
    for n, (assignee, reply_by, answered) in inquiries.items():
        nudges = [to for to, overdue, ids in reminders if n in ids and not overdue]
        told = [to for to, overdue, ids in reminders if n in ids and overdue]
        assert len(nudges) <= 1 and (nudges or reply_by > today or answered), (n, nudges)
        assert set(nudges) <= {assignee}, f"inquiry {n}'s reminder went to {nudges}, not {assignee}"
        assert len(told) == (1 if reply_by < today and not answered else 0), (n, told)
        assert assignee not in told, f"inquiry {n} past its day was told only to its own {assignee}"
    assert not [mail for mail in queued(app=app) if EDITOR in str(mail["To"])]


def _end_of_day(app, runner, clients: dict, day: date) -> set[tuple[str, bool, frozenset[int]]]:
    """The scheduled jobs at 10:00, then the checks; the reminders that day's run queued."""
    before = _reminders(app)
    run_due(runner, f"{day}T10:00")
    _assert_each_sees_only_theirs(app, clients)
    _assert_reminded_as_promised(app, day)
    return set(_reminders(app)[len(before):])


def test_a_group_works_a_week_of_inquiries(app, auth, admin_client, runner, monkeypatch):
    clients = _group(app, auth, admin_client)
    monday, tuesday, wednesday, thursday, friday = _week(app)
    landed = clients[COORDINATOR].get("/admin/")
    assert landed.status_code == 302 and landed.headers["Location"].endswith("/admin/inquiries")

    kim, lee = (_arrive(app, monkeypatch, monday, f"{who}@example.com", "maya-lopez") for who in ("kim", "lee"))
    ash = _arrive(app, monkeypatch, monday, "ash@example.com", "leo-park")
    sam = _arrive(app, monkeypatch, monday, "sam@example.com")
    assert {n: who for n, (who, _, _) in _inquiries(app).items()} == {kim: MAYA, lee: MAYA, ash: LEO, sam: COORDINATOR}
    assert _end_of_day(app, runner, clients, monday) == set()

    _hand(app, clients[COORDINATOR], sam, to=LEO)
    _hand(app, clients[MAYA], lee, to=LEO)
    assert clients[MAYA].get(f"/admin/inquiries/{lee}").status_code == 404, "handed on: no longer hers"
    _answer(clients[MAYA], kim)
    ray = _arrive(app, monkeypatch, tuesday, "ray@example.com")
    assert _inquiries(app)[ray][0] == COORDINATOR
    assert _end_of_day(app, runner, clients, tuesday) == set()

    assert _end_of_day(app, runner, clients, wednesday) == {(LEO, False, frozenset({lee, ash, sam}))}
    _answer(clients[LEO], lee)
    _answer(clients[LEO], ash, by_call=True)

    assert _end_of_day(app, runner, clients, thursday) == {(COORDINATOR, False, frozenset({ray})),
                                                           (COORDINATOR, True, frozenset({sam}))}
    assert _end_of_day(app, runner, clients, friday) == {(ADMIN_EMAIL, True, frozenset({ray}))}, \
        "the coordinator's own inquiry past its day is told to the owner, not to her"

    with app.app_context():
        late = db.session.scalars(select(Inquiry).where(Inquiry.reply_by < friday, Inquiry.first_response_at.is_(None)))
        assert {(i.id, i.nudged_at is not None, i.escalated_at is not None) for i in late} == {(sam, True, True),
                                                                                              (ray, True, True)}


def _hand_it_to(client, inquiry_id: int) -> set[int]:
    """The people the inquiry's "Hand it to" list offers, by id."""
    page = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
    choices = re.search(r'<select[^>]*name="assignee".*?</select>', page, re.S).group(0)
    return {int(n) for n in re.findall(r'value="(\d+)"', choices)}


def test_a_removed_coordinator_gets_nothing_new(app, auth, admin_client, runner, monkeypatch):
    clients = _group(app, auth, admin_client)
    monday, tuesday, wednesday, thursday, _ = _week(app)
    sam = _arrive(app, monkeypatch, monday, "sam@example.com")  # whoever fits: the coordinator's
    queued(app=app)  # a worker writes its forward, to her, before she is removed

    owner = admin_client
    assert owner.post(f"/admin/people/{_id(app, COORDINATOR)}/remove").status_code == 302
    owner.post("/admin/people/invite", data={"email": NEW_COORDINATOR, "role": "coordinator", **CONFIRMED})
    assert clients[COORDINATOR].get("/admin/inquiries").status_code == 302, "signed out everywhere"
    ray = _arrive(app, monkeypatch, tuesday, "ray@example.com")

    assert _inquiries(app)[ray][0] is None, "whoever fits, with no coordinator in the practice: the practice's"
    assert queued("inquiry_forward", app=app)[-1]["To"].addresses[0].addr_spec == PRACTICE
    assert _hand_it_to(owner, sam) == {_id(app, email) for email in (ADMIN_EMAIL, MAYA, LEO)}
    run_due(runner, f"{wednesday}T10:00")
    run_due(runner, f"{thursday}T10:00")

    assert set(_reminders(app)) == {(ADMIN_EMAIL, False, frozenset({sam})), (ADMIN_EMAIL, True, frozenset({sam})),
                                    (PRACTICE, False, frozenset({ray}))}, "what she left reaches the owner"
    mail_to = {email: [mail["Subject"] for mail in queued(app=app)
                       if email in (address.addr_spec for address in mail["To"].addresses)]
               for email in (COORDINATOR, NEW_COORDINATOR)}
    assert len(mail_to[COORDINATOR]) == 1, "only Monday's forward, before she was removed"
    assert len(mail_to[NEW_COORDINATOR]) == 1, "only the invitation, until she joins"
