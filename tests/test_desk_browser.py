"""The therapist's desk in a real browser: nothing she writes is lost, the screen tells the truth,
the dashboard adds up, and every admin page fits a phone."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.inquiries import intake
from newsletter.mail import outgoing
from newsletter.models import Delivery, Inquiry, OutgoingMail, utcnow
from newsletter.publishing import issues
from newsletter.readers.subscriptions import Origin
from newsletter.sending import dispatcher
from newsletter.sending.ledger import batches_needed
from newsletter.tasks import send_batch
from tests.helpers import ADMIN_EMAIL, add_issue, add_readers, place_in
from tests.support import wait_for

ARTICLE = "Repair after a rough evening\n\nA first paragraph about turning toward each other.\n\nA closing thought.\n"
PHONE = {"width": 375, "height": 740}


def new_draft(app) -> int:
    with app.app_context():
        issue = issues.create_from_source(ARTICLE)
        db.session.commit()
        return issue.id


def test_send_test_right_after_typing_carries_the_edit_and_its_web_link_works(app, admin_page, live_server, smtp):
    page = admin_page
    issue_id = new_draft(app)
    page.goto(f"{live_server}/admin/issues/{issue_id}")
    assert page.input_value("input[name=to]") == ADMIN_EMAIL  # her own address, filled in

    page.fill("textarea[name=source]", "Typed a moment ago: be gentle with each other tonight.")
    page.click("text=Send test")  # before the autosave's pause is over

    page.wait_for_selector("text=A test copy is on its way")
    with app.app_context():
        wait_for(lambda: db.session.scalar(select(func.count()).select_from(OutgoingMail)), timeout=20)
        outgoing.deliver_due()  # what a worker does, if none runs in this session
    [received] = smtp.wait_for_messages(1)
    assert "be gentle with each other tonight" in received.text
    assert "A first paragraph about turning" not in received.text

    # "View in browser" works although the issue has not been sent, and shows the edited text.
    [link] = re.findall(r"http://newsletter\.test/issues/[\w-]+\?preview=[\w.-]+", received.text)
    page.goto(link.replace("http://newsletter.test", live_server))
    assert "be gentle with each other tonight" in page.content()
    response = page.goto(link.replace("http://newsletter.test", live_server)[:-3] + "xyz")
    assert response.status == 404  # a tampered link shows nothing


def test_leaving_with_unsaved_changes_warns_and_saved_changes_let_her_go(app, admin_page, live_server):
    page = admin_page
    issue_id = new_draft(app)
    page.goto(f"{live_server}/admin/issues/{issue_id}")
    warnings = []

    def answer(dialog):
        warnings.append(dialog.type)
        dialog.dismiss()  # "stay on this page"

    page.on("dialog", answer)
    page.fill("input[name=title]", "A title typed just now")
    page.click("text=← Issues")
    wait_for(lambda: warnings, timeout=10)
    assert warnings == ["beforeunload"]
    assert page.url.endswith(f"/admin/issues/{issue_id}")

    page.wait_for_selector("#save-state:has-text('Saved at')", timeout=20_000)
    page.click("text=← Issues")
    page.wait_for_url(f"{live_server}/admin/issues")
    assert warnings == ["beforeunload"]
    assert "A title typed just now" in page.content()  # the autosave kept it


def test_send_now_says_how_many_and_turns_into_live_progress_without_a_reload(app, admin_page, live_server, smtp,
                                                                             worker):
    page = admin_page
    with app.app_context():
        add_readers(3)
    issue_id = new_draft(app)
    page.goto(f"{live_server}/admin/issues/{issue_id}")
    questions = []

    def accept(dialog):
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.click("#send-now")
    # The worker may dispatch (even finish) before the page comes back: any of the three states is right.
    page.wait_for_selector("#issue-status:text-matches('scheduled|sending|sent')")
    assert questions == ["Send “Repair after a rough evening” now to 3 readers?"]
    page.evaluate("window.notReloaded = true")

    page.wait_for_selector("#sending-progress[data-status=sent]", timeout=60_000)
    assert page.evaluate("window.notReloaded") is True
    progress = page.locator("#sending-progress")
    assert progress.is_visible()
    assert progress.locator("[data-field=sent]").first.text_content() == "3"
    assert page.locator("#issue-status").text_content() == "sent"
    assert not page.locator("#send-now").is_visible()  # only actions that apply
    assert page.locator("input[name=title]").is_disabled()  # nothing she types now could be lost
    assert len(smtp.wait_for_messages(3)) == 3


def test_cancel_mid_send_reports_how_many_got_it_and_how_many_did_not(app, admin_page, live_server, smtp,
                                                                      start_worker):
    page = admin_page
    queue = f"desk-{uuid.uuid4().hex[:8]}"
    start_worker(env={"SEND_RATE_PER_SECOND": "2", "SEND_BATCH_SIZE": "5"}, queues=queue)
    with app.app_context():
        add_readers(30)
        issue = add_issue()
        dispatcher.dispatch(issue.id)
        db.session.commit()
        issue_id = issue.id
        for _ in range(batches_needed(issue_id)):
            send_batch.apply_async(args=[issue_id], queue=queue)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server}/admin/issues/{issue_id}")

    wait_for(lambda: int(page.locator("#sending-progress [data-field=sent]").first.text_content()) >= 2, timeout=60)
    page.click("text=Stop for good (cancel)")
    page.wait_for_selector("#sending-progress[data-status=canceled]")

    def page_and_ledger() -> tuple[tuple[int, int], dict]:
        """The page's "N sent, M not sent" after a reload, and the ledger's counts."""
        page.reload()
        outcome = " ".join(page.locator("#sending-progress .outcome").text_content().split())
        shown = tuple(map(int, re.search(r"(\d+) sent, (\d+) not sent", outcome).groups()))
        with app.app_context():
            ledger = dict(db.session.execute(select(Delivery.status, func.count())
                                             .where(Delivery.issue_id == issue_id).group_by(Delivery.status)).all())
        return shown, ledger

    # The message in flight when she pressed the button may still land: wait until the worker has stopped.
    (sent, not_sent), ledger = wait_for(lambda: (lambda shown, ledger: (shown, ledger) if shown[0] == ledger.get(
        "sent") == len(smtp.messages) else None)(*page_and_ledger()), timeout=30)
    assert 0 < sent < 30
    assert not_sent == ledger["skipped"] == 30 - sent
    assert "you canceled it" in page.content()


def test_dashboard_adds_up_and_every_admin_page_fits_a_phone(app, admin_page, live_server):
    with app.app_context():
        readers = add_readers(4) + add_readers(2, status="pending", prefix="waiting")
        add_readers(1, status="unsubscribed", prefix="left")
        add_readers(1, status="bounced", prefix="bounced")
        sent = add_issue(status="sent")
        sent.dispatched_at = utcnow() - timedelta(days=1)
        db.session.add_all([Delivery(issue_id=sent.id, subscriber_id=r.id, status=status) for r, status in
                            zip(readers, ["sent", "sent", "sent", "failed"])])
        origin = Origin(source="site", ip="203.0.113.9")
        for index, message in enumerate(["We would like to book a first session.", "Hello, do you see couples?",
                                         "Some nights I don’t want to live anymore."]):
            intake.submit(name=f"Person {index}", email=f"p{index}@example.com", phone="",
                             preferred_contact="email", message=message, origin=origin)
        db.session.flush()
        first = db.session.scalar(select(Inquiry).order_by(Inquiry.id))
        place_in(first, "contacted")
        first.first_response_at = first.created_at + timedelta(hours=3)
        db.session.commit()
        draft = issues.create_from_source(ARTICLE)
        db.session.commit()
        draft_id, sent_id, reader_id, inquiry_id = draft.id, sent.id, readers[0].id, first.id

    page = admin_page
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/admin/")
    figure = lambda name: page.locator(f"#dash-readers dd[data-figure={name}]").text_content()  # noqa: E731
    assert (figure("confirmed"), figure("pending"), figure("left"), figure("bounced")) == ("4", "2", "1", "1")
    assert page.locator("[data-figure=new-inquiries]").text_content() == "2"
    assert page.locator("[data-status=Contacted]").text_content() == "1"
    assert "1 urgent inquiry waiting for you" in page.locator(".urgent-card").text_content()
    assert "Person 2" in page.locator(".urgent-card").text_content()
    assert page.locator("[data-figure=response-30]").text_content() == "3 h 0 min"
    row = page.locator(f"tr[data-issue='{sent_id}']")
    assert [row.locator(f"[data-figure={name}]").text_content() for name in ("delivered", "failed", "bounced")] == [
        "3", "1", "0"]
    assert page.locator("a.button:has-text('New issue')").is_visible()

    for path in ["/admin/", "/admin/issues", f"/admin/issues/{draft_id}", f"/admin/issues/{sent_id}",
                 "/admin/issues/new", "/admin/readers", f"/admin/readers/{reader_id}", "/admin/readers/import",
                 "/admin/readers/embed", "/admin/inquiries", f"/admin/inquiries/{inquiry_id}", "/admin/practice",
                 "/admin/outbox"]:
        assert page.goto(f"{live_server}{path}").status == 200, path
        widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], f"{path} scrolls sideways at 375 px: {widths}"
