"""`flask backup` and `flask restore`: a restore drill on both databases, and the refusals that
protect a therapist from restoring over live data or from a damaged file."""
from __future__ import annotations

import secrets

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.inquiries import intake
from newsletter.models import Delivery, Inquiry, Issue, Subscriber, utcnow
from newsletter.readers.subscriptions import Origin
from newsletter.sending import dispatcher, engine, ledger

READERS = 25
MESSAGES = {f"person{i}@example.org": f"Hello, I'd like to talk about my sleep — note {i} 🌿" for i in range(4)}


def fill(smtp) -> dict:
    """Readers, a sent issue with its deliveries, and inquiries; returns what must come back."""
    db.session.add_all(Subscriber(email=f"reader{i}@example.org", name=f"Reader {i}", status="active",
                                  token_key=secrets.token_hex(16)) for i in range(READERS))
    issue = Issue(title="Turning toward", subject="Turning toward each other", slug="turning-toward",
                  email_html="<p>Dear %%reader_name%%</p>", email_text="Dear %%reader_name%%",
                  status="scheduled", send_at=utcnow())
    db.session.add(issue)
    db.session.commit()
    assert dispatcher.dispatch(issue.id) == READERS
    for _ in range(ledger.batches_needed(issue.id)):
        engine.send_batch(issue.id)
    smtp.wait_for_messages(READERS)
    for address, message in MESSAGES.items():
        intake.submit(name="A Person", email=address, phone="555 0100", preferred_contact="email",
                         message=message, origin=Origin())
    db.session.commit()
    return snapshot()


def snapshot() -> dict:
    """Every reader, issue, delivery and inquiry (decrypted), as comparable values."""
    db.session.expire_all()
    return {
        "readers": db.session.execute(select(Subscriber.email, Subscriber.status, Subscriber.token_key)
                                      .order_by(Subscriber.id)).all(),
        "issues": db.session.execute(select(Issue.slug, Issue.status, Issue.recipients_count)).all(),
        "deliveries": db.session.execute(select(Delivery.issue_id, Delivery.subscriber_id, Delivery.status)
                                         .order_by(Delivery.id)).all(),
        "inquiries": {row.email: (row.message, row.phone)
                      for row in db.session.scalars(select(Inquiry))},
    }


def test_backup_wipe_restore_finds_every_reader_issue_delivery_and_inquiry(app_ctx, smtp, tmp_path):
    runner = app_ctx.test_cli_runner()
    before = fill(smtp)
    assert len(before["deliveries"]) == READERS and all(d.status == "sent" for d in before["deliveries"])
    assert before["inquiries"] == {address: (message, "555 0100") for address, message in MESSAGES.items()}
    path = tmp_path / "practice.backup"

    result = runner.invoke(args=["backup", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{READERS} readers, 1 issues, {READERS} deliveries, {len(MESSAGES)} inquiries" in result.output
    assert "INQUIRY_ENCRYPTION_KEY" in result.output
    raw = path.read_bytes()
    assert b"sleep" not in raw and "sleep".encode("utf-16-le") not in raw  # inquiries stay encrypted

    db.session.remove()
    db.drop_all()
    result = runner.invoke(args=["restore", str(path)])  # an empty database needs no --yes
    assert result.exit_code == 0, result.output
    assert "Restored" in result.output and "INQUIRY_ENCRYPTION_KEY" in result.output
    assert snapshot() == before


def test_restore_over_data_needs_yes_and_then_replaces_it(app_ctx, tmp_path):
    runner = app_ctx.test_cli_runner()
    db.session.add(Subscriber(email="kept@example.org", name="", status="active", token_key="k" * 32))
    db.session.commit()
    path = tmp_path / "practice.backup"
    assert runner.invoke(args=["backup", str(path)]).exit_code == 0
    db.session.add(Subscriber(email="later@example.org", name="", status="active", token_key="l" * 32))
    db.session.commit()

    refused = runner.invoke(args=["restore", str(path)])
    assert refused.exit_code != 0 and "--yes" in refused.output
    assert emails() == ["kept@example.org", "later@example.org"]

    replaced = runner.invoke(args=["restore", "--yes", str(path)])
    assert replaced.exit_code == 0, replaced.output
    assert emails() == ["kept@example.org"]


def emails() -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(Subscriber.email).order_by(Subscriber.email)))


def test_a_wrong_or_truncated_file_is_refused_with_a_clear_message_and_changes_nothing(app_ctx, smtp, tmp_path):
    runner = app_ctx.test_cli_runner()
    fill(smtp)
    path = tmp_path / "practice.backup"
    assert runner.invoke(args=["backup", str(path)]).exit_code == 0
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a backup\n")
    readers_before = db.session.scalar(select(func.count()).select_from(Subscriber))

    for bad, says in [(truncated, "damaged or incomplete"), (text_file, "is not a backup"),
                      (tmp_path / "missing.backup", "no backup file")]:
        result = runner.invoke(args=["restore", "--yes", str(bad)])
        assert result.exit_code != 0
        assert says in result.output and "Traceback" not in result.output
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == readers_before
