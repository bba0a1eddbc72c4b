"""Reach without surveillance: the admin's Reach page counts what happened in the week after an issue went out
(delivered, bounced, complaints, unsubscribes, breaks) from the ledger, bounce reports and consent records; click
counts per link only when she turns them on, through a signed redirect that refuses a tampered URL.
Through the real pages, CLI, worker, webhook and SMTP server."""
from __future__ import annotations

import io
import re
import secrets
import time
from collections import Counter
from email.message import EmailMessage

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.models import Delivery, Issue, IssueReply, LinkClick, OutgoingMail, PracticeProfile, Subscriber
from newsletter.models.outbox import MAIL_PENDING
from newsletter.publishing import clicks
from tests.helpers import cli, copies, examples, import_issue, join, link_in
from tests.relays import MAILGUN_KEY, mailgun_body
from tests.support import change_settings, wait_for

TITLE = "What we keep"


def figures(page: str, issue_id: int) -> dict[str, int]:
    """The numbers of the issue's row on the Reach page."""
    row = re.search(rf'<tr data-issue="{issue_id}">(.*?)</tr>', page, re.S).group(1)
    return {name: int(value) for name, value in re.findall(r'data-figure="(\w+)">(\d+)<', row)}


def copy_to(smtp, address: str):
    return next(m.message for m in smtp.messages if m.message["Subject"] == TITLE and m.rcpt_tos == [address])


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def ledger_of(app, issue_id: int) -> list[tuple]:
    """Each delivery of the issue: (reader, status, attempts, next attempt, error)."""
    with app.app_context():
        rows = db.session.execute(
            select(Subscriber.email, Delivery.status, Delivery.attempts, Delivery.next_attempt_at, Delivery.error)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.issue_id == issue_id).order_by(Delivery.id)).all()
        return [tuple(row) for row in rows]


def pending_mail(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OutgoingMail)
                                 .where(OutgoingMail.status == MAIL_PENDING))


def send_issue(app, runner, smtp, tmp_path, readers: set[str]) -> int:
    issue_id = int(import_issue(runner, tmp_path, TITLE))
    cli(runner, "issue", "send", str(issue_id))
    cli(runner, "run-due")
    wait_for(lambda: set(copies(smtp, TITLE)) == readers, timeout=60)
    return issue_id


def test_reach_counts_a_bounce_a_complaint_an_unsubscribe_and_a_break_and_leaves_links_alone(
        app, client, runner, smtp, worker, tmp_path, auth):
    change_settings(app, MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY)
    readers = ["keeps@example.org", "refuses@example.org", "complains@example.org", "leaves@example.org",
               "rests@example.org"]
    for email in readers:
        join(app, client, email)
    # The joins' mails (confirmation, welcome) out first: refused too, a welcome would bounce the reader before
    # the issue, which then never names them.
    wait_for(lambda: not pending_mail(app), timeout=30)
    smtp.reject("refuses@example.org")
    issue_id = send_issue(app, runner, smtp, tmp_path, set(readers) - {"refuses@example.org"})

    complaint = {"event": "complained", "recipient": "complains@example.org", "id": secrets.token_hex(8),
                 "timestamp": time.time(),
                 "message": {"headers": {"message-id": copy_to(smtp, "complains@example.org")["Message-ID"].strip("<>")}}}
    assert client.post("/webhooks/mailgun", json=mailgun_body(complaint)).status_code == 200
    leaving = link_in(copy_to(smtp, "leaves@example.org"), "unsubscribe")
    assert client.post(leaving, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    resting = link_in(copy_to(smtp, "rests@example.org"), "preferences")
    assert "No mail until" in client.post(resting, data={"action": "save", "break_months": "1"}).get_data(as_text=True)

    auth.login(client)
    page = wait_for(lambda: (page := client.get("/admin/reach").get_data(as_text=True))
                    and figures(page, issue_id)["bounced"] == 1 and page, timeout=60,
                    message=lambda: f"{figures(client.get('/admin/reach').get_data(as_text=True), issue_id)}; "
                                    f"the ledger: {ledger_of(app, issue_id)}")
    assert figures(page, issue_id) == {"delivered": 4, "bounced": 1, "complaints": 1, "unsubscribes": 1, "breaks": 1,
                                       "replies": 0}
    assert "Click counts" in page

    sent = html_of(copy_to(smtp, "keeps@example.org"))
    with app.app_context():
        originals = clicks.links(db.session.get(Issue, issue_id).email_html)
    assert originals and all(f'href="{url}"' in sent for url in originals)
    assert "/r/" not in sent
    assert "nothing counts your clicks" in client.get("/").get_data(as_text=True)


def test_click_counts_go_through_a_signed_redirect_that_counts_per_link_and_refuses_a_tampered_url(
        app, client, runner, smtp, worker, tmp_path, auth):
    admin = auth.login(app.test_client())
    assert admin.post("/admin/reach/clicks", data={"count_clicks": "y"}).status_code == 302
    assert "never who clicked it" in client.get("/").get_data(as_text=True)
    join(app, client, "reader@example.org")
    issue_id = send_issue(app, runner, smtp, tmp_path, {"reader@example.org"})

    sent = html_of(copy_to(smtp, "reader@example.org"))
    counted = re.findall(r'href="http://newsletter\.test(/r/\d+/\d+/[A-Za-z0-9_-]+)"', sent)
    with app.app_context():
        originals = clicks.links(db.session.get(Issue, issue_id).email_html)
    assert len(counted) == len(originals) >= 2
    assert not any(f'href="{url}"' in sent for url in originals if "/r/" not in url)

    first = client.get(counted[0])
    assert first.status_code == 302 and first.headers["Location"] == originals[0]
    client.get(counted[0])
    client.get(counted[1])
    assert client.head(counted[1]).status_code == 302  # a link scanner's HEAD counts nothing
    issue, link, signature = counted[1].split("/")[2:]
    for tampered in (f"/r/{issue}/{link}/{signature[:-2]}xx", f"/r/{issue}/{int(link) + 1}/{signature}",
                     f"/r/{int(issue) + 1}/{link}/{signature}", f"/r/{issue}/{link}/https:%2F%2Fevil.example"):
        assert client.get(tampered).status_code == 404, tampered
    with app.app_context():
        counts = dict(db.session.execute(select(LinkClick.link, func.count()).group_by(LinkClick.link)).all())
        columns = set(LinkClick.__table__.columns.keys())
    assert counts == {0: 2, 1: 1}
    assert columns == {"id", "issue_id", "link", "created_at"}  # nothing that names a reader

    page = admin.get("/admin/reach").get_data(as_text=True)
    row = re.search(rf'<tr data-issue="{issue_id}">(.*?)</tr>', page, re.S).group(1)
    assert Counter(re.findall(r'data-figure="clicks">(\d+)<', row)) == Counter({"2": 1, "1": 1})

    assert admin.post("/admin/reach/clicks", data={}).status_code == 302  # unticked: off again
    assert "nothing counts your clicks" in client.get("/").get_data(as_text=True)


@examples(20)  # each example signs in (a password hash)
@given(value=st.one_of(st.text(max_size=50), st.sampled_from(["y", "", "false", "0", "\x00", "on"])))
def test_hostile_click_switch_input_never_gives_a_500(app, auth, value):
    admin = auth.login(app.test_client())

    response = admin.post("/admin/reach/clicks", data={"count_clicks": value})

    assert response.status_code == 302
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(PracticeProfile.count_clicks)) in (True, False)


# -- replies she forwards to be counted: sending/replies.py

def reply_to(copy, body: str = "Thank you, this helped us talk again.") -> EmailMessage:
    reply = EmailMessage()
    reply["From"], reply["To"] = copy["To"], "practice@newsletter.test"
    reply["Subject"], reply["In-Reply-To"] = f"Re: {copy['Subject']}", copy["Message-ID"]
    reply["Message-ID"] = f"<{secrets.token_hex(8)}@reader.example>"
    reply.set_content(body)
    return reply


def forwarded(reply: EmailMessage, inline: bool = False) -> bytes:
    forward = EmailMessage()
    forward["From"], forward["To"] = "practice@newsletter.test", "counts@newsletter.test"
    forward["Subject"] = f"Fwd: {reply['Subject']}"
    if inline:  # what a mail program's "Forward" does by default: the reply's words, no Message-ID
        forward.set_content(f"---------- Forwarded message ---------\nSubject: {reply['Subject']}\n\n"
                            f"{reply.get_content()}")
    else:
        forward.set_content("For the count.")
        forward.add_attachment(reply)
    return forward.as_bytes()


def upload(admin, raw: bytes):
    return admin.post("/admin/reach/replies", data={"message": (io.BytesIO(raw), "reply.eml")},
                      content_type="multipart/form-data")


def test_a_forwarded_reply_counts_once_for_its_issue_and_keeps_nothing_of_the_reader(
        app, client, runner, smtp, worker, tmp_path, auth):
    for email in ("writes@example.org", "also@example.org"):
        join(app, client, email)
    issue_id = send_issue(app, runner, smtp, tmp_path, {"writes@example.org", "also@example.org"})
    admin = auth.login(app.test_client())
    first = reply_to(copy_to(smtp, "writes@example.org"))

    assert upload(admin, forwarded(first)).status_code == 302
    assert f"A reply to \u201c{TITLE}\u201d: counted." in admin.get("/admin/reach").get_data(as_text=True)
    assert upload(admin, forwarded(first)).status_code == 302  # the same reply forwarded again
    assert "it was counted before, so not again" in admin.get("/admin/reach").get_data(as_text=True)
    # Piped in by her mail server as it came, and an inline forward of another reader's reply.
    second = reply_to(copy_to(smtp, "also@example.org"), "We tried the exercise.")
    piped = runner.invoke(args=["replies", "count"], input=second.as_bytes())
    assert piped.exit_code == 0 and piped.output.strip() == f"A reply to \u201c{TITLE}\u201d: counted."
    assert upload(admin, forwarded(reply_to(copy_to(smtp, "also@example.org")), inline=True)).status_code == 302

    page = admin.get("/admin/reach").get_data(as_text=True)
    assert figures(page, issue_id)["replies"] == 3
    with app.app_context():
        assert set(IssueReply.__table__.columns.keys()) == {"id", "issue_id", "fingerprint", "created_at"}
        stored = " ".join(str(value) for row in db.session.execute(select(IssueReply)).scalars()
                          for value in (row.issue_id, row.fingerprint))
    assert "writes@" not in stored and "exercise" not in stored


def test_a_message_that_answers_no_issue_is_not_counted_and_says_why(app, runner, auth):
    admin = auth.login(app.test_client())
    stranger = EmailMessage()
    stranger["From"], stranger["Subject"] = "someone@example.org", "Re: A question about fees"
    stranger["In-Reply-To"] = "<issue-999.abc@newsletter.test>"  # an issue that never went out
    stranger.set_content("Hello")

    response = upload(admin, stranger.as_bytes())
    assert response.status_code == 400 and "That was not counted: it answers no issue" in response.get_data(as_text=True)
    result = runner.invoke(args=["replies", "count"], input=stranger.as_bytes())
    assert result.exit_code == 1 and "Not counted: it answers no issue" in result.output
    assert upload(admin, b"").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IssueReply)) == 0


@examples(30)
@given(raw=st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda text: (
    "Subject: =?utf-8?q?Re=3A_" + text.replace("\n", " ") + "?=\r\nIn-Reply-To: " + text + "\r\n\r\nhi").encode(
        "utf-8", "surrogatepass"))))
def test_hostile_reply_files_never_give_a_500_and_count_nothing(app, auth, raw):
    admin = auth.login(app.test_client())

    response = upload(admin, raw)

    assert response.status_code == 400 and "That was not counted" in response.get_data(as_text=True)
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(func.count()).select_from(IssueReply)) == 0
