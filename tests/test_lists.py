"""Several newsletters: readers choose lists on the signup form, the therapist sends an issue to some
lists, and a reader on two of them gets one copy. Through the real pages, CLI, worker and SMTP server."""
from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.models import ListMembership, NewsletterList, SignupRequest, Subscriber
from tests.helpers import cli, copies, import_issue, join, signup, upload_sample
from tests.support import wait_for

# -- helpers shared with test_series.py and test_preferences.py









# -- the signup form

def test_with_one_list_nothing_about_lists_shows_and_with_two_the_forms_offer_them(app, client, runner):
    for path in ("/subscribe", "/embed/subscribe", "/"):
        page = client.get(path).get_data(as_text=True)
        assert 'name="lists"' not in page and "Which newsletters" not in page

    cli(runner, "lists", "add", "couples", "--name", "Couples & relationships")

    for path in ("/subscribe", "/embed/subscribe", "/"):
        page = client.get(path).get_data(as_text=True)
        assert "Which newsletters would you like?" in page
        assert 'value="newsletter" checked' in page and 'value="couples">' in page
        assert "Couples &amp; relationships" in page


def test_signup_puts_the_reader_on_the_lists_ticked_or_on_the_default(app, client, runner):
    cli(runner, "lists", "add", "couples", "--name", "Couples")

    signup(client, "both@example.org", lists=["newsletter", "couples"])
    signup(client, "couples@example.org", lists=["couples"])
    signup(client, "plain@example.org")

    with app.app_context():
        on = dict(db.session.execute(
            select(Subscriber.email, func.count()).join(ListMembership).group_by(Subscriber.email)).all())
        slugs = set(db.session.scalars(select(NewsletterList.slug).join(ListMembership).join(Subscriber)
                                       .where(Subscriber.email == "couples@example.org")))
    assert on == {"both@example.org": 2, "couples@example.org": 1, "plain@example.org": 1}
    assert slugs == {"couples"}


def test_an_unknown_list_gets_a_clear_message_and_stores_nothing(app, client, runner):
    cli(runner, "lists", "add", "couples", "--name", "Couples")

    response = client.post("/subscribe", data={"email": "x@example.org", "lists": ["couples", "nope"]})

    assert response.status_code == 400
    assert "There is no list &#39;nope&#39;." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SignupRequest)) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.lists(st.text(max_size=80), max_size=60))
def test_hostile_list_choices_never_give_a_500(app, client, chosen):
    response = client.post("/subscribe", data={"email": "fuzz@example.org", "lists": chosen})

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "Please choose from the newsletters shown." in response.get_data(as_text=True) \
            or "There is no list" in response.get_data(as_text=True)


def test_lists_add_refuses_a_bad_or_taken_short_name_with_a_message(app, runner):
    for args, message in ((["Bad Slug", "--name", "X"], "lowercase letters"),
                          (["newsletter", "--name", "Again"], "There is already a list 'newsletter'.")):
        result = runner.invoke(args=["lists", "add", *args])
        assert result.exit_code == 1 and message in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(NewsletterList)) == 0


# -- sending to lists

def test_a_reader_on_two_lists_gets_one_copy_of_an_issue_sent_to_both(app, client, runner, smtp, worker, tmp_path):
    cli(runner, "lists", "add", "couples", "--name", "Couples")
    cli(runner, "lists", "add", "parents", "--name", "Parents")
    join(app, client, "both@example.org", ["newsletter", "couples"])
    join(app, client, "couples@example.org", ["couples"])
    join(app, client, "plain@example.org")
    join(app, client, "parents@example.org", ["parents"])
    smtp.wait_for_messages(8)  # a confirmation and a welcome each

    to_both = import_issue(runner, tmp_path, "To both lists")
    cli(runner, "issue", "send", to_both, "--lists", "newsletter,couples")
    to_couples = import_issue(runner, tmp_path, "To couples only")
    cli(runner, "issue", "send", to_couples, "--lists", "couples")
    to_default = import_issue(runner, tmp_path, "To the default list")
    cli(runner, "issue", "send", to_default)
    assert "scheduled issues started: " + ", ".join(sorted([to_both, to_couples, to_default])) in cli(runner, "run-due")

    wait_for(lambda: sum(copies(smtp, s).total() for s in ("To both lists", "To couples only",
                                                            "To the default list")) == 7, timeout=60)
    assert copies(smtp, "To both lists") == Counter({"both@example.org": 1, "couples@example.org": 1,
                                                     "plain@example.org": 1})
    assert copies(smtp, "To couples only") == Counter({"both@example.org": 1, "couples@example.org": 1})
    assert copies(smtp, "To the default list") == Counter({"both@example.org": 1, "plain@example.org": 1})


def test_issue_send_to_an_unknown_list_says_so_and_schedules_nothing(app, runner, tmp_path):
    issue_id = import_issue(runner, tmp_path, "Nowhere")

    result = runner.invoke(args=["issue", "send", issue_id, "--lists", "newsletter,nope"])

    assert result.exit_code == 1 and "There is no list 'nope'." in result.output
    assert "scheduled issues started: none" in cli(runner, "run-due")


def test_the_admin_send_form_offers_the_lists_and_sends_to_the_ones_ticked(
        app, admin_client, runner, smtp, worker):  # noqa: F811  (the fixture imported above)
    cli(runner, "lists", "add", "couples", "--name", "Couples")
    join(app, admin_client, "couples@example.org", ["couples"])
    join(app, admin_client, "plain@example.org")
    smtp.wait_for_messages(4)
    issue_id = upload_sample(admin_client)

    editor = admin_client.get(f"/admin/issues/{issue_id}").get_data(as_text=True)
    assert "Send to" in editor and 'value="newsletter" checked' in editor and 'value="couples">' in editor
    refused = admin_client.post(f"/admin/issues/{issue_id}/schedule", data={"action": "now", "lists": ["gone"]})
    assert refused.status_code == 400 and "There is no list &#39;gone&#39;." in refused.get_data(as_text=True)
    assert admin_client.post(f"/admin/issues/{issue_id}/schedule",
                             data={"action": "now", "lists": ["couples"]}).status_code == 302

    subject = "Why Small Moments of Disconnection Hurt More Than Big Fights"
    wait_for(lambda: "Issue 1: sent" in cli(runner, "issue", "status", str(issue_id)), timeout=60)
    assert copies(smtp, subject) == Counter({"couples@example.org": 1})
