"""Welcome series: step 1 right after confirming, later steps after their delay (run-due, as beat runs
it), each exactly once, one mail a day at most, never to a reader who left, nobody back-filled.
Through the real pages, CLI, worker and SMTP server."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.models import Delivery
from tests.helpers import cli, copies, join, local_day, queued, run_due
from tests.support import SAMPLE_ARTICLE, wait_for


def add_step(runner, tmp_path, title: str, days: int, *more: str) -> str:
    body = SAMPLE_ARTICLE.read_text(encoding="utf-8").split("\n", 1)[1]
    path = tmp_path / f"{title.replace(' ', '-')}.txt"
    path.write_text(f"{title}\n{body}", encoding="utf-8")
    return cli(runner, "series", "add", str(path), "--days", str(days), *more)






def ledger(app) -> Counter:
    with app.app_context():
        return Counter(db.session.execute(select(Delivery.issue_id, Delivery.status)).all())


def test_a_new_reader_gets_step_one_on_confirming_and_step_two_after_its_delay_exactly_once(
        app, client, runner, smtp, worker, tmp_path):
    assert "Step 1 of newsletter's welcome series" in add_step(runner, tmp_path, "Welcome one", 0)
    assert "3 days after confirming" in add_step(runner, tmp_path, "Welcome two", 3)

    join(app, client, "ruth@example.org")

    wait_for(lambda: copies(smtp, "Welcome one") == Counter({"ruth@example.org": 1}), timeout=30)
    step_one = next(m for m in smtp.messages if m.message["Subject"] == "Welcome one")
    assert "http://newsletter.test/preferences/" in step_one.text
    assert not queued("welcome", app=app)  # the series' first step is the welcome

    for day in (1, 2):
        assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, day))
    assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, 3, hour=7))  # before the hour
    assert "welcome steps queued, issues: 2" in run_due(runner, local_day(app, 3))
    wait_for(lambda: copies(smtp, "Welcome two") == Counter({"ruth@example.org": 1}), timeout=30)
    for day in (3, 4, 30):
        assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, day))

    wait_for(lambda: ledger(app) == Counter({(1, "sent"): 1, (2, "sent"): 1}))
    assert copies(smtp, "Welcome one") + copies(smtp, "Welcome two") == Counter({"ruth@example.org": 2})


def test_readers_who_joined_before_the_series_are_not_back_filled(app, client, runner, smtp, worker, tmp_path):
    join(app, client, "early@example.org")
    smtp.wait_for_messages(2)  # confirmation, welcome
    add_step(runner, tmp_path, "Hello from the series", 0)

    join(app, client, "later@example.org")

    wait_for(lambda: copies(smtp, "Hello from the series") == Counter({"later@example.org": 1}), timeout=30)
    assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, 5))
    assert [m["To"].addresses[0].addr_spec for m in queued("welcome", app=app)] == ["early@example.org"]


def test_one_mail_a_day_at_most_and_nothing_for_a_reader_who_left(app, client, runner, smtp, worker, tmp_path):
    add_step(runner, tmp_path, "First step", 0)
    add_step(runner, tmp_path, "Second step", 0)
    join(app, client, "stays@example.org")
    join(app, client, "leaves@example.org")
    wait_for(lambda: copies(smtp, "First step").total() == 2, timeout=30)

    assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, 0, hour=23))
    unsubscribe = next(m for m in smtp.messages if m.rcpt_tos == ["leaves@example.org"]
                       and m.message["Subject"] == "First step").message["List-Unsubscribe"]
    client.post(unsubscribe.split("<http://newsletter.test", 1)[1].split(">", 1)[0])
    assert "welcome steps queued, issues: 2" in run_due(runner, local_day(app, 1))

    wait_for(lambda: copies(smtp, "Second step") == Counter({"stays@example.org": 1}), timeout=30)


def test_a_paused_series_waits_and_a_stopped_one_sends_nothing_more(app, client, runner, smtp, worker, tmp_path):
    add_step(runner, tmp_path, "Paused step one", 0)
    add_step(runner, tmp_path, "Paused step two", 2)
    join(app, client, "patient@example.org")
    wait_for(lambda: copies(smtp, "Paused step one").total() == 1, timeout=30)

    assert "is paused" in cli(runner, "series", "pause")
    assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, 3))
    cli(runner, "series", "resume")
    assert "welcome steps queued, issues: 2" in run_due(runner, local_day(app, 3))
    wait_for(lambda: copies(smtp, "Paused step two").total() == 1, timeout=30)

    cli(runner, "series", "stop")
    join(app, client, "afterstop@example.org")
    assert [m["To"].addresses[0].addr_spec for m in queued("welcome", app=app)] == ["afterstop@example.org"]
    assert "welcome steps queued, issues: none" in run_due(runner, local_day(app, 5))


def test_series_add_refuses_a_shorter_delay_than_the_last_step_and_an_unknown_list(app, runner, tmp_path):
    add_step(runner, tmp_path, "Later step", 5)
    path = tmp_path / "early.txt"
    path.write_text("Early\nSome text.\n", encoding="utf-8")

    for args, message in ((["--days", "2"], "choose at least that many days"),
                          (["--days", "7", "--list", "nope"], "There is no list 'nope'.")):
        result = runner.invoke(args=["series", "add", str(path), *args])
        assert result.exit_code == 1 and message in result.output
