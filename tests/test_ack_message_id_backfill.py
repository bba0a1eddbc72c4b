"""The migration that carries inquiries from before ack_message_id into threaded replies: their
acknowledgement's Message-ID is read back from the outbox, so a reply to them has In-Reply-To."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.mail import outbox
from newsletter.models import Inquiry, OutgoingMail
from tests.helpers import queued, submit

MIGRATION = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "d3a9f4b2c7e1_backfill_ack_message_id.py"


def migration():
    spec = importlib.util.spec_from_file_location("backfill_ack_message_id", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_before_the_migration(inquiry_id: int, *, sent: bool) -> str:
    """Forget the inquiry's ack_message_id, as rows from before it have none; with `sent`, the ack is the
    finished message the worker stored. Returns the Message-ID the acknowledgement went out with."""
    inquiry = db.session.get(Inquiry, inquiry_id)
    ack = db.session.scalar(select(OutgoingMail).where(OutgoingMail.kind == "inquiry_ack",
                                                       OutgoingMail.recipient == inquiry.email))
    message_id = inquiry.ack_message_id
    inquiry.ack_message_id = None
    if sent:
        outbox.message_bytes(ack)  # stores the finished message in place of the draft
    db.session.commit()
    return message_id


def test_old_inquiries_get_their_acknowledgements_message_id_and_replies_thread_under_it(auth, app, client):
    with app.app_context():
        auth.login(client)
        drafted = submit(email="dana@example.com").inquiry_id
        sent = submit(email="sam@example.com", name="Sam Lee").inquiry_id
        never_acknowledged = submit(email="kim@example.com", name="Kim Park").inquiry_id
        drafted_id = _as_before_the_migration(drafted, sent=False)
        sent_id = _as_before_the_migration(sent, sent=True)
        db.session.execute(OutgoingMail.__table__.delete().where(OutgoingMail.recipient == "kim@example.com"))
        db.session.get(Inquiry, never_acknowledged).ack_message_id = None
        db.session.commit()

        filled = migration().backfill_ack_message_ids(db.session.connection())
        db.session.commit()

        assert filled == 2
        assert db.session.get(Inquiry, drafted).ack_message_id == drafted_id
        assert db.session.get(Inquiry, sent).ack_message_id == sent_id
        assert db.session.get(Inquiry, never_acknowledged).ack_message_id is None

    for inquiry_id in (drafted, sent):
        response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Glad you wrote."})
        assert response.status_code in (200, 302)
    with app.app_context():
        replies = {reply["To"].addresses[0].addr_spec: reply for reply in queued("inquiry_reply")}
        assert replies["dana@example.com"]["In-Reply-To"] == drafted_id
        assert replies["sam@example.com"]["In-Reply-To"] == sent_id == replies["sam@example.com"]["References"]
