"""Real rows for every route (a reader, an issue, an inquiry with a booking and a waitlist entry...), and
the URL of each rule of app.url_map built from them: the rule tests walk every route with these."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text

from newsletter.accounts import people, practice
from newsletter.core.extensions import db
from newsletter.inquiries import booking, clinicians, waitlist
from newsletter.models import AdminUser, Clinician, Inquiry, Subscriber, WaitlistEntry
from newsletter.models.issues import SENT
from newsletter.publishing import clicks, issues
from newsletter.readers import personalize, preferences, subscriptions
from tests.helpers import ARTICLE, ONE_SLOT_A_DAY, photo_file, submit


@dataclass
class Rows:
    """What the URLs are built from: a row of every kind a route names, and a live token for every token route."""

    values: dict[str, object]
    tokens: dict[str, str]  # by the URL's first segment: "consultation" for /consultation/<token>


def make_rows(app) -> Rows:
    """A pending and an active reader, a sent and a draft issue, an inquiry with a booking, one with a live
    booking link, a waitlist entry, an outbox file and an invited colleague, a clinician with a photo; committed."""
    with app.app_context():
        practice.ensure_profile().consultation_hours = ONE_SLOT_A_DAY
        practice.ensure_profile().count_clicks = True  # so the click redirect counts, as it may on a GET
        subscriptions.subscribe("pending@example.org", "", subscriptions.Origin(), "wording")
        subscriptions.subscribe("active@example.org", "", subscriptions.Origin(), "wording")
        active = db.session.scalar(select(Subscriber).where(Subscriber.email == "active@example.org"))
        subscriptions.confirm(token_of(subscriptions.confirm_url(active)), subscriptions.Origin())
        pending = db.session.scalar(select(Subscriber).where(Subscriber.email == "pending@example.org"))
        sent = issues.create_from_source(ARTICLE)
        sent.status = SENT
        draft = issues.create_from_source(ARTICLE.replace("Turning", "Leaning", 1))
        db.session.commit()
        booked = db.session.get(Inquiry, submit(email="booked@example.org").inquiry_id)
        booking.book(booked, booking.open_slots()[0])
        offered = db.session.get(Inquiry, submit(email="offered@example.org").inquiry_id)
        entry_inquiry = submit(email="waiting@example.org", waitlist=True).inquiry_id
        entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.inquiry_id == entry_inquiry))
        invited = people.invite("invited@example.org", "clinician")
        colleague = AdminUser(email="clinician@example.org", password_hash="-", role="clinician")
        db.session.add(colleague)
        db.session.flush()
        clinician = Clinician(admin_id=colleague.id, name="Maya López", slug="maya-lopez")
        clinicians.set_photo(clinician, photo_file())
        db.session.add(clinician)
        db.session.commit()
        outbox_file = Path(app.extensions["settings"].outbox_dir) / "sample.eml"
        outbox_file.parent.mkdir(parents=True, exist_ok=True)
        outbox_file.write_bytes(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nHello\r\n")
        return Rows(
            values={"issue_id": draft.id, "inquiry_id": booked.id, "entry_id": entry.id, "reader_id": active.id,
                    "slug": sent.slug, "name": outbox_file.name, "filename": "css/site.css",
                    "link": 0, "signature": clicks.signature(draft.id, 0), "person_id": invited.id,
                    "clinician_id": clinician.id, "version": clinician.photo_version},
            tokens={"confirm": token_of(subscriptions.confirm_url(pending)),
                    "unsubscribe": token_of(subscriptions.unsubscribe_url(active)),
                    "consultation": token_of(booking.booking_url(offered)),
                    "waitlist": token_of(waitlist.answer_url(entry)),
                    "preferences": token_of(personalize.preferences_url(active)),
                    "preferences/address": token_of(preferences.address_change_url(active, "moved@example.org")),
                    "admin/invitation": people.invitation_token(invited)},
        )


def token_kind(rule, argument: str = "token") -> str:
    """What a token rule's token is for: its path before the token ("preferences/address", "admin/invitation")."""
    return rule.rule.strip("/").split(f"/<{argument}>")[0].split("<")[0].strip("/")


def url_for_rule(rule, rows: Rows) -> str:
    """The rule's URL with real ids and a live token; fails for an argument it does not know."""
    values = {}
    for argument in rule.arguments:
        if "token" in argument:
            kind = token_kind(rule, argument)
            assert kind in rows.tokens, f"{rule.rule}: make_rows makes no {kind!r} token; add one so the rule is tested"
            values[argument] = rows.tokens[kind]
        else:
            assert argument in rows.values, f"{rule.rule}: no row for <{argument}>; add one to make_rows"
            values[argument] = rows.values[argument]
    return rule.build(values, append_unknown=False)[1]


def snapshot(app, smtp) -> dict:
    """Every row of every table as stored (an encrypted value as its ciphertext, not decrypted: any write to it
    shows), the files in the outbox and the mail the SMTP server took."""
    with app.app_context():
        db.session.remove()
        state = {table.name: [] for table in db.metadata.sorted_tables}
        for name, row in db.session.execute(text(_every_row(db.session.get_bind().dialect.name))):
            state[name].append(row)
        state = {name: sorted(rows) for name, rows in state.items()}
        state["(outbox files)"] = sorted(p.name for p in Path(app.extensions["settings"].outbox_dir).glob("*"))
    state["(smtp)"] = len(smtp.messages)
    return state


def _every_row(dialect: str) -> str:
    """One query for the rows of every table, each row as text: on PostgreSQL as the server writes the row out,
    on SQLite each value quoted (the walk takes a snapshot after each of its 450 requests)."""
    selects = []
    for table in db.metadata.sorted_tables:
        if dialect == "postgresql":
            row = "CAST(r AS text)"
        else:
            row = " || ',' || ".join(f'quote(r."{column.name}")' for column in table.columns)
        selects.append(f"SELECT '{table.name}', {row} FROM \"{table.name}\" AS r")
    return " UNION ALL ".join(selects)


def changes(before: dict, after: dict) -> list[str]:
    """What differs, leaving out rows added to the read records."""
    changed = []
    for name, rows in before.items():
        if name in BACKGROUND_RECORDS or name in READ_RECORDS and set(rows) <= set(after[name]):
            continue
        if rows != after[name]:
            changed.append(name)
    return changed


# Rows a GET may add without changing anything: who read what, and a click on an issue's link (counted on
# the GET a link is, with no reader id; newsletter/publishing/clicks.py).
READ_RECORDS = {"audit_log", "inquiry_access", "link_clicks"}
# Written by the background processes on their own clock (newsletter/heartbeats.py), whatever a request does.
BACKGROUND_RECORDS = {"heartbeats"}


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]
