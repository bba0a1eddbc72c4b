"""The monthly digest: a reader who chooses it on the preferences page gets no mail per issue, and on the 1st
one mail listing last month's issues, once, however many times the scheduler runs; never while on a break.
Through the real pages, CLI (run-due --now), worker and SMTP server."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.models import ReaderDigest
from tests.helpers import cli, consent_events, copies, import_issue, join, link_in, queued, run_due, text_of
from tests.support import wait_for


def preferences_path(app, email: str) -> str:
    [welcome] = [m for m in queued("welcome", app=app) if m["To"].addresses[0].addr_spec == email]
    return link_in(welcome, "preferences")


def first_of_next_month(app, months: int = 1, hour: int = 10) -> str:
    """The 1st of a coming month at `hour`, practice time, as run-due --now reads it."""
    with app.app_context():
        today = datetime.now(UTC).astimezone(practice.timezone()).date()
    month_index = today.month - 1 + months
    return f"{date(today.year + month_index // 12, month_index % 12 + 1, 1)}T{hour:02d}:00"


def digests_of(smtp) -> list:
    return [m for m in smtp.messages if "from Inner Calm Counseling:" in str(m.message["Subject"])]


def test_a_digest_reader_gets_one_digest_on_the_first_and_no_mail_per_issue(app, client, runner, smtp, worker,
                                                                            tmp_path):
    for email in ("monthly@example.org", "each@example.org", "resting@example.org", "gone@example.org"):
        join(app, client, email)
    for email in ("monthly@example.org", "resting@example.org", "gone@example.org"):
        saved = client.post(preferences_path(app, email), data={"action": "save", "frequency": "monthly"})
        assert "Saved." in saved.get_data(as_text=True)
    assert '<input checked id="frequency-1"' in client.get(preferences_path(app, "monthly@example.org")).get_data(as_text=True)
    client.post(preferences_path(app, "resting@example.org"), data={"action": "save", "frequency": "monthly",
                                                                    "break_months": "3"})
    client.post(preferences_path(app, "gone@example.org"), data={"action": "leave"})

    for title in ("Turning toward each other", "When the same argument comes back"):
        cli(runner, "issue", "send", import_issue(runner, tmp_path, title))
    cli(runner, "run-due")
    wait_for(lambda: copies(smtp, "When the same argument comes back") == Counter({"each@example.org": 1}), timeout=60)
    assert copies(smtp, "Turning toward each other") == Counter({"each@example.org": 1})

    last_day = (date.fromisoformat(first_of_next_month(app)[:10]) - timedelta(days=1)).isoformat()
    assert "monthly digests mailed: 0" in run_due(runner, f"{last_day}T23:00")
    assert "monthly digests mailed: 0" in run_due(runner, first_of_next_month(app, hour=8))  # before the hour
    assert "monthly digests mailed: 1" in run_due(runner, first_of_next_month(app))
    assert "monthly digests mailed: 0" in run_due(runner, first_of_next_month(app, hour=11))
    wait_for(lambda: len(digests_of(smtp)) == 1, timeout=60)

    [digest] = digests_of(smtp)
    assert digest.rcpt_tos == ["monthly@example.org"]
    assert str(digest.message["Subject"]).endswith(": 2 articles")
    assert digest.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in digest.message["List-Unsubscribe"]
    text = text_of(digest.message)
    assert text.index("Turning toward each other") < text.index("When the same argument comes back")
    slug_path = next(line for line in text.splitlines() if "/issues/turning-toward-each-other" in line)
    assert client.get(slug_path.split("newsletter.test", 1)[1]).status_code == 200
    assert "For monthly@example.org" in client.get(link_in(digest.message, "preferences")).get_data(as_text=True)
    assert digest.message.get_body(("html",)).get_content().lstrip().lower().startswith("<!doctype html>")

    assert "monthly digests mailed: 0" in run_due(runner, first_of_next_month(app, months=2))  # a month with no issues
    with app.app_context():
        months = db.session.execute(select(ReaderDigest.month, ReaderDigest.issues)).all()
    assert len(months) == 2 and sorted(count for _, count in months) == [0, 2]
    assert len(digests_of(smtp)) == 1
    assert [e.action for e in consent_events(app, "monthly@example.org")][-1] == "digest"
    assert [e.wording for e in consent_events(app, "monthly@example.org")][-1] == (
        "Send me one digest a month instead of each issue (preferences page)")


def test_going_back_to_each_issue_is_a_consent_record_and_brings_issues_again(app, client, runner, smtp, worker,
                                                                              tmp_path):
    join(app, client, "switch@example.org")
    path = preferences_path(app, "switch@example.org")
    client.post(path, data={"action": "save", "frequency": "monthly"})
    client.post(path, data={"action": "save", "frequency": "monthly"})  # no change: no record
    client.post(path, data={"action": "save", "frequency": "each"})

    assert [e.action for e in consent_events(app, "switch@example.org")][-2:] == ["digest", "every_issue"]
    cli(runner, "issue", "send", import_issue(runner, tmp_path, "Back to each issue"))
    cli(runner, "run-due")
    wait_for(lambda: copies(smtp, "Back to each issue") == Counter({"switch@example.org": 1}), timeout=60)
    assert "monthly digests mailed: 0" in run_due(runner, first_of_next_month(app))


def test_an_unknown_frequency_is_refused_with_a_message_and_changes_nothing(app, client):
    join(app, client, "odd@example.org")
    before = consent_events(app, "odd@example.org")

    refused = client.post(preferences_path(app, "odd@example.org"), data={"action": "save", "frequency": "weekly"})

    assert refused.status_code == 400
    assert "Please choose each article or a monthly digest." in refused.get_data(as_text=True)
    assert len(consent_events(app, "odd@example.org")) == len(before)
