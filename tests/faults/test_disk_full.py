"""Disk full for the outbox folder (the embedded mode writes mail as .eml files there)."""
from __future__ import annotations

import errno
from email import policy
from email.parser import BytesParser

from sqlalchemy import update

from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.models import OutgoingMail, utcnow
from newsletter.readers import subscriptions
from newsletter.readers.subscriptions import Origin


def fill(folder) -> None:
    """Write a filler file until the file system says it is full."""
    with (folder / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"x" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_outbox_disk_defers_the_mail_and_it_goes_once_when_space_is_back(app_factory, small_disk):
    app = app_factory(SMTP_HOST="", OUTBOX_DIR=str(small_disk))
    with app.app_context():
        fill(small_disk)
        [mail_id] = subscriptions.subscribe("full@example.org", "", Origin(), subscriptions.signup_wording())
        db.session.commit()

        assert outgoing.deliver(mail_id) == "deferred"
        row = db.session.get(OutgoingMail, mail_id)
        assert row.status == "pending" and "OSError" in row.last_error
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler"], "no half-written message is left behind"

        (small_disk / "filler").unlink()
        db.session.execute(update(OutgoingMail).values(next_attempt_at=utcnow()))  # its retry time, now
        db.session.commit()
        assert outgoing.deliver(mail_id) == "sent"
        assert outgoing.deliver(mail_id) == "skipped"

        [written] = small_disk.glob("*.eml")
        message = BytesParser(policy=policy.default).parsebytes(written.read_bytes())
        assert message["To"] == "full@example.org"
        assert "confirm" in message.get_body(("plain",)).get_content()
        assert len(list(small_disk.iterdir())) == 1
