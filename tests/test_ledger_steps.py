"""The ledger written in steps: the first batches go while the rest of a long list is written, the issue is sent
only once every reader is in it, and a writer that stops (killed, raced, canceled) loses and doubles nobody.
"""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import event, update

from newsletter.core.extensions import db
from newsletter.models import Delivery, Issue, utcnow
from newsletter.sending import control, dispatcher, ledger
from newsletter.tasks import dispatch_due_issues
from tests.helpers import add_issue, add_readers, copies_by_reader, delivery_statuses, issue_status, send_all
from tests.support import wait_for

READERS = 10


@pytest.fixture
def small_steps(monkeypatch):
    """Steps of a few readers, so that ten readers make a long list."""
    monkeypatch.setattr(dispatcher, "FIRST_STEP", 3)
    monkeypatch.setattr(dispatcher, "LEDGER_STEP", 4)


def _write_the_rest(issue_id: int) -> None:
    while not dispatcher.write_ledger_step(issue_id).finished:
        db.session.commit()
    db.session.commit()


def test_the_first_readers_get_the_issue_while_the_rest_of_the_list_is_still_being_written(app_ctx, smtp, small_steps):
    readers = add_readers(READERS)
    issue_id = add_issue().id

    assert dispatcher.dispatch(issue_id) == 3
    db.session.commit()
    send_all(issue_id)

    assert len(smtp.messages) == 3
    assert issue_status(issue_id) == "sending", "sent before the rest of its readers were in the ledger"

    _write_the_rest(issue_id)
    send_all(issue_id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
    assert issue_status(issue_id) == "sent"
    assert db.session.get(Issue, issue_id).recipients_count == READERS


def test_beats_dispatch_writes_the_whole_list_and_the_worker_sends_it(app, smtp, worker, small_steps):
    """Through the real worker: the dispatch task hands out each step's batches as it commits."""
    with app.app_context():
        readers = add_readers(READERS)
        issue_id = add_issue().id
        dispatch_due_issues.delay()

        wait_for(lambda: issue_status(issue_id) == "sent", timeout=60, message="the issue was not sent")
        assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})


def test_a_writer_killed_mid_list_is_replaced_by_a_later_dispatch_round(app_ctx, smtp, small_steps):
    readers = add_readers(READERS)
    issue_id = add_issue().id
    dispatcher.dispatch(issue_id)
    db.session.commit()  # then the writer dies: no further step

    assert dispatcher.dispatch_due() == [], "taken over while its writer may still be alive"
    later = utcnow() + ledger.IDLE_AFTER + timedelta(seconds=1)
    assert dispatcher.dispatch_due(later) == [issue_id]
    _write_the_rest(issue_id)
    send_all(issue_id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
    assert issue_status(issue_id) == "sent"


def test_a_step_raced_by_another_writer_is_rolled_back_and_adds_nobody_twice(app_ctx, small_steps):
    add_readers(READERS)
    issue_id = add_issue().id
    dispatcher.dispatch(issue_id)
    db.session.commit()

    raced = []

    def another_writer_first(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO deliveries") and not raced:
            raced.append(statement)
            with db.engine.begin() as other:  # it wrote this step and moved on
                other.execute(update(Issue).where(Issue.id == issue_id).values(ledger_through=7))

    event.listen(db.engine, "before_cursor_execute", another_writer_first)
    try:
        with pytest.raises(dispatcher.LedgerStepTaken):
            dispatcher.write_ledger_step(issue_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", another_writer_first)
    db.session.rollback()

    assert delivery_statuses(issue_id) == Counter(pending=3)


def test_a_cancel_stops_the_writing_and_leaves_nobody_waiting(app_ctx, small_steps):
    add_readers(READERS)
    issue_id = add_issue().id
    dispatcher.dispatch(issue_id)
    db.session.commit()

    assert control.cancel(issue_id)
    db.session.commit()

    assert dispatcher.write_ledger_step(issue_id) is None
    assert delivery_statuses(issue_id) == Counter(skipped=3)


def test_a_reader_a_welcome_step_already_sent_the_article_counts_once_among_the_recipients(app_ctx, smtp, small_steps):
    readers = add_readers(READERS)
    issue_id = add_issue().id
    db.session.add(Delivery(issue_id=issue_id, subscriber_id=readers[0].id, status="sent", attempts=1))
    db.session.commit()

    dispatcher.dispatch(issue_id)
    db.session.commit()
    _write_the_rest(issue_id)
    send_all(issue_id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers[1:]})
    progress = control.progress(issue_id)
    assert (progress.recipients, progress.sent, progress.percent_done) == (READERS, READERS, 100.0)


def test_who_joins_while_the_list_is_written_is_left_out_as_after_any_dispatch(app_ctx, smtp, small_steps):
    readers = add_readers(READERS)
    waiting = add_readers(1, status="pending", prefix="waiting")[0]
    issue_id = add_issue().id
    dispatcher.dispatch(issue_id)
    db.session.commit()

    add_readers(1, prefix="latecomer")  # imported after the dispatch, a higher id than anyone written yet
    waiting.status, waiting.confirmed_at = "active", utcnow()  # confirmed after the dispatch
    db.session.commit()
    _write_the_rest(issue_id)
    send_all(issue_id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})


def test_the_first_step_starts_at_the_first_reader_however_far_the_ids_have_come(app_ctx, smtp, small_steps):
    gone = add_readers(50, prefix="gone")
    for reader in gone:  # erased long ago: the list's ids now start at 51
        db.session.delete(reader)
    db.session.commit()
    readers = add_readers(READERS)
    issue_id = add_issue().id

    assert dispatcher.dispatch(issue_id) == 3
    db.session.commit()
    _write_the_rest(issue_id)
    send_all(issue_id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
