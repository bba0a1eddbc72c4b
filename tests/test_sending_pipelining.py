"""The next message's envelope written behind this message's data (RFC 2920), against the real SMTP server:
each answer is blamed on the message it belongs to, an envelope written ahead for a message that does not
follow delivers nothing, and a server that does not offer PIPELINING gets one command at a time.
"""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import transports
from newsletter.models import Issue, Subscriber
from newsletter.publishing import issue_mail
from newsletter.sending import dispatcher, engine
from tests.helpers import add_issue, add_readers, copies_by_reader, delivery_statuses

SENDER = "news@newsletter.test"
MESSAGE = b"Subject: hello\r\n\r\nA line.\r\n"


def _to(reader: int) -> str:
    return f"reader{reader}@example.org"


def _then(reader: int) -> tuple[str, str]:
    return SENDER, _to(reader)


def test_a_refused_end_of_data_is_blamed_on_that_message_not_on_the_envelope_behind_it(app_ctx, smtp):
    smtp.fail_next(1, 554)
    with transports.SMTPTransport(settings()) as connection:
        with pytest.raises(transports.PermanentFailure, match="554"):
            connection.send(SENDER, _to(0), MESSAGE, then=_then(1))
        connection.send(SENDER, _to(1), MESSAGE, then=_then(2))
        connection.send(SENDER, _to(2), MESSAGE)

    assert copies_by_reader(smtp) == Counter({_to(1): 1, _to(2): 1})
    assert smtp.connections == 1, "reader1's envelope, written behind reader0's data, was the one used"


def test_try_later_at_the_end_of_data_sends_that_message_again_and_the_next_once(app_ctx, smtp):
    smtp.fail_next(1, 451)
    with transports.SMTPTransport(settings()) as connection:
        with pytest.raises(transports.TemporaryFailure, match="451"):
            connection.send(SENDER, _to(0), MESSAGE, then=_then(1))
        connection.send(SENDER, _to(0), MESSAGE, then=_then(1))  # the retry: reader1's envelope waited for data
        connection.send(SENDER, _to(1), MESSAGE)

    assert copies_by_reader(smtp) == Counter({_to(0): 1, _to(1): 1})


def test_the_next_readers_refused_rcpt_is_that_readers_failure_not_the_message_before(app_ctx, smtp):
    smtp.reject(_to(1), 550)
    smtp.reject(_to(2), 452)
    with transports.SMTPTransport(settings()) as connection:
        connection.send(SENDER, _to(0), MESSAGE, then=_then(1))  # accepted, whatever reader1's RCPT gets
        with pytest.raises(transports.PermanentFailure, match="550"):
            connection.send(SENDER, _to(1), MESSAGE, then=_then(2))
        with pytest.raises(transports.TemporaryFailure, match="452") as deferred:
            connection.send(SENDER, _to(2), MESSAGE, then=_then(3))
        connection.send(SENDER, _to(3), MESSAGE)

    assert deferred.value.recipient_only
    assert copies_by_reader(smtp) == Counter({_to(0): 1, _to(3): 1})
    assert smtp.answers == [250, 550, 452, 250]


def test_an_envelope_written_ahead_for_a_message_that_never_follows_delivers_nothing(app_ctx, smtp):
    with transports.SMTPTransport(settings()) as connection:
        connection.send(SENDER, _to(0), MESSAGE, then=_then(1))  # then the batch stops (paused, lease lost...)
    with transports.SMTPTransport(settings()) as connection:
        connection.send(SENDER, _to(1), MESSAGE)

    assert copies_by_reader(smtp) == Counter({_to(0): 1, _to(1): 1})


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_batch_marks_each_reader_from_its_own_answer(app_ctx, smtp, pipelining):
    """Reader1's data is refused while reader2's envelope is already on its way; reader3's RCPT is refused."""
    smtp.pipelining = pipelining
    readers = add_readers(5)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    smtp.reject(_to(3), 550)
    smtp.on("ACCEPTED", lambda accepted: smtp.fail_next(1, 554) if accepted == 1 else None)

    result = engine.send_batch(issue.id)

    assert (result.sent, result.failed) == (3, 2)
    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers if r.email not in (_to(1), _to(3))})
    assert delivery_statuses(issue.id) == Counter(sent=3, failed=2)
    assert set(db.session.scalars(select(Subscriber.email).where(Subscriber.status == "bounced"))) == {_to(1), _to(3)}
    assert smtp.connections == 1


def test_a_server_without_pipelining_gets_one_command_at_a_time_and_every_message(app_ctx, smtp):
    smtp.pipelining = False
    with transports.SMTPTransport(settings()) as connection:
        connection.send(SENDER, _to(0), MESSAGE, then=_then(1))
        connection.send(SENDER, _to(1), MESSAGE)

    assert copies_by_reader(smtp) == Counter({_to(0): 1, _to(1): 1})


def test_each_copy_built_while_the_last_one_was_taken_in_goes_to_its_own_reader(app_ctx, smtp):
    """A reader's copy is built while the server takes in the copy before it: it still names that reader."""
    readers = add_readers(6)
    issue = add_issue()
    dispatcher.dispatch(issue.id)

    assert engine.send_batch(issue.id).sent == 6

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
    for received in smtp.messages:
        assert received.message["To"].addresses[0].addr_spec == received.rcpt_tos[0]


def test_a_copy_that_cannot_be_built_ahead_leaves_the_message_in_flight_delivered_once(app_factory, smtp,
                                                                                        monkeypatch):
    """Reader2's copy fails to build while reader1's is taken in: reader1 gets one copy, not a retry; reader2's
    failure is met at its own turn, and pauses the issue saying why."""
    app = app_factory(SEND_MAX_CONSECUTIVE_FAILURES=2)
    built = issue_mail.IssueMail.for_reader

    def for_reader(self, reader, **kwargs):
        if reader.email == _to(2):
            raise ValueError("no copy for reader2")
        return built(self, reader, **kwargs)

    monkeypatch.setattr(issue_mail.IssueMail, "for_reader", for_reader)
    monkeypatch.setattr(engine, "RETRY_FIRST_DELAY", 0.01)
    with app.app_context():
        readers = add_readers(4)
        issue = add_issue()
        dispatcher.dispatch(issue.id)

        result = engine.send_batch(issue.id)

        assert copies_by_reader(smtp) == Counter({_to(0): 1, _to(1): 1})
        assert result.sent == 2 and result.stopped == "paused"
        assert "no copy for reader2" in db.session.get(Issue, issue.id).pause_reason
        assert delivery_statuses(issue.id) == Counter(sent=2, pending=2)
        assert [r.email for r in readers][:3] == [_to(0), _to(1), _to(2)]
