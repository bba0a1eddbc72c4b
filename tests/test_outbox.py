"""Transactional mail is stored first and sent when the SMTP server lets it: never lost, never doubled."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.mail.suppression import is_suppressed
from newsletter.models import OutgoingMail, utcnow
from tests.support import change_settings


def _queue(to: str = "reader@example.com") -> int:
    row = outgoing.queue(kind="note", to=to, subject="Hello ☀️", text="Plain words", html="<p>Plain words</p>")
    db.session.commit()
    return row.id


def _make_due(mail_id: int) -> None:
    db.session.execute(update(OutgoingMail).where(OutgoingMail.id == mail_id)
                       .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def test_a_try_later_answer_defers_and_the_sweeper_sends_it_once(app_ctx, smtp):
    mail_id = _queue()
    smtp.fail_next(1, 451)

    assert outgoing.deliver(mail_id) == "deferred"
    assert outgoing.deliver_due() == {}, "not due again before its backoff"
    _make_due(mail_id)
    assert outgoing.deliver_due() == {"sent": 1}
    assert outgoing.deliver_due() == {}

    assert len(smtp.to("reader@example.com")) == 1
    assert db.session.get(OutgoingMail, mail_id).attempts == 2


def test_an_unreachable_smtp_server_defers_the_mail(app_ctx, smtp):
    change_settings(app_ctx, SMTP_PORT=1)  # nothing listens there
    mail_id = _queue()

    assert outgoing.deliver(mail_id) == "deferred"
    row = db.session.get(OutgoingMail, mail_id)
    assert row.status == "pending" and "cannot connect" in row.last_error


def test_a_permanent_refusal_fails_the_mail_and_suppresses_the_address(app_ctx, smtp):
    smtp.reject("gone@example.com", 550)
    mail_id = _queue("gone@example.com")

    assert outgoing.deliver(mail_id) == "failed"
    assert is_suppressed("gone@example.com")
    assert outgoing.deliver(_queue("gone@example.com")) == "suppressed"
    assert smtp.messages == []


def test_a_message_is_sent_once_however_often_it_is_delivered(app_ctx, smtp):
    mail_id = _queue()

    assert [outgoing.deliver(mail_id) for _ in range(3)] == ["sent", "skipped", "skipped"]
    assert len(smtp.messages) == 1


def test_the_stored_message_is_encrypted(app_ctx):
    mail_id = _queue()
    assert b"Plain words" not in db.session.get(OutgoingMail, mail_id).message


def test_a_refused_sender_defers_the_mail_and_blames_no_reader(app_ctx, smtp, monkeypatch):
    change_settings(app_ctx, MAIL_FROM="Practice <blocked@newsletter.test>")
    smtp.reject_sender("blocked@newsletter.test", 550)
    mail_id = _queue("reader@example.com")

    assert outgoing.deliver(mail_id) == "deferred"
    assert not is_suppressed("reader@example.com")
    assert db.session.get(OutgoingMail, mail_id).status == "pending"


def test_a_message_that_cannot_be_decrypted_does_not_stop_the_sweep(app_ctx, smtp):
    broken = _queue("first@example.com")
    db.session.get(OutgoingMail, broken).message = b"not a fernet token"
    db.session.commit()
    _queue("second@example.com")

    assert outgoing.deliver_due() == {"deferred": 1, "sent": 1}
    assert "InvalidToken" in db.session.get(OutgoingMail, broken).last_error
    assert [m.rcpt_tos for m in smtp.messages] == [["second@example.com"]]
