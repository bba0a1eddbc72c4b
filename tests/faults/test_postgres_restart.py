"""PostgreSQL restarted in the middle of a send, on a server this test starts itself."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from newsletter.core.extensions import db
from newsletter.models import utcnow
from newsletter.sending import dispatcher, ledger
from tests.helpers import add_issue, add_readers, copies_by_reader, delivery_statuses, hand_out_batches, issue_status
from tests.support import make_app, wait_for

READERS = 40


def test_postgres_restarted_mid_send_the_send_finishes_doubling_only_messages_in_flight(
        production_database, settings, own_postgres, smtp, start_worker):
    env = {"DATABASE_URL": own_postgres.url, "SEND_RATE_PER_SECOND": "20", "SEND_BATCH_SIZE": "50"}
    app = make_app(settings, DATABASE_URL=own_postgres.url)
    with app.app_context():
        db.create_all()
        addresses = {r.email for r in add_readers(READERS)}
        issue_id = add_issue().id
        queue = f"pg-restart-{uuid.uuid4().hex[:8]}"
        worker = start_worker(env=env, queues=queue)
        dispatcher.dispatch(issue_id)
        db.session.commit()
        hand_out_batches(issue_id, queue, ledger.batches_needed(issue_id))
        db.session.commit()  # ends the read: this process holds no transaction across the restart

        smtp.wait_for_messages(10)
        own_postgres.restart()
        # The batch's next mark finds its connection cut and the task fails; its rows stay leased.
        wait_for(lambda: b"raised unexpected" in worker.log_path.read_bytes(), timeout=60,
                 message="the batch did not notice the restart")
        db.session.remove()  # this process's connections were cut too
        in_flight = len(smtp.messages) - delivery_statuses(issue_id)["sent"]
        assert in_flight in (0, 1)

        # As in the kill tests: the sweep runs with its clock past the lease.
        needed = ledger.sweep(now=utcnow() + ledger.LEASE + timedelta(seconds=1))
        hand_out_batches(issue_id, queue, needed[issue_id])
        wait_for(lambda: issue_status(issue_id) == "sent", timeout=60, message="the send did not finish")

        copies = copies_by_reader(smtp)
        assert set(copies) == addresses
        assert sum(copies.values()) == READERS + in_flight
        assert delivery_statuses(issue_id) == Counter(sent=READERS)
        db.session.remove()
        db.engine.dispose()
