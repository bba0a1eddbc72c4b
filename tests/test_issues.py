"""The sample article becomes an issue: rendered once, tested, scheduled in the practice's timezone."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.models import Issue, utcnow
from newsletter.models.issues import CANCELED, DRAFT, SCHEDULED, SENDING
from newsletter.publishing import issues
from newsletter.readers import personalize
from tests.support import SAMPLE_ARTICLE as SAMPLE
from tests.support import change_settings

TITLE = "Why Small Moments of Disconnection Hurt More Than Big Fights"


def import_article(runner, path, *extra: str) -> int:
    result = runner.invoke(args=["issue", "import", str(path), *extra])
    assert result.exit_code == 0, result.output
    return int(result.output.strip())


def import_sample(runner, *extra: str) -> int:
    return import_article(runner, SAMPLE, *extra)


def load(app, issue_id: int) -> Issue:
    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        db.session.expunge(issue)
        return issue


def test_sample_becomes_a_draft_whose_subject_is_its_title(app, runner):
    issue = load(app, import_sample(runner))

    assert (issue.status, issue.title, issue.subject) == (DRAFT, TITLE, TITLE)
    assert issue.slug == "why-small-moments-of-disconnection-hurt-more-than-big-fights"
    assert issue.preheader == "Many couples are surprised by what hurts the most in their relationship."
    assert issue.signature.startswith("Shoshana Ort, LCSW")
    assert issue.source_format == "text" and not issue.source.startswith(TITLE)


def test_the_mail_is_rendered_once_with_inlined_styles_and_reader_markers(app, runner):
    html = load(app, import_sample(runner)).email_html

    assert html.startswith("<!doctype html>")
    assert '<p style="margin:0 0 22px">Many couples' in html
    assert re.search(r"<h1 style=.margin:0 0 26px", html)
    assert "@media only screen and (max-width: 480px)" in html and "!important" in html
    assert "prefers-color-scheme: dark" in html
    assert f'href="{personalize.UNSUBSCRIBE_URL}"' in html
    assert 'href="http://newsletter.test/contact"' in html
    assert 'href="http://newsletter.test/issues/why-small-moments' in html
    assert 'href="mailto:shoshanaortlcsw@gmail.com"' in html and "720-772-7149" in html  # mail programs link numbers
    assert 'href="https://www.innercalmcounseling.com"' in html


def test_the_text_part_is_wrapped_prose_with_signature_call_and_footer(app, runner):
    text = load(app, import_sample(runner)).email_text

    assert text.startswith(f"{TITLE}\n{'=' * len(TITLE)}\n\nMany couples are surprised")
    assert max(len(line) for line in text.split("\n") if "://" not in line) <= 76
    for expected in ("Shoshana Ort, LCSW", "📍 Greenwood Village, CO", "📧 shoshanaortlcsw@gmail.com",
                     "📞 720-772-7149", "strengthened—or slowly lost.", "http://newsletter.test/contact",
                     f"Unsubscribe: {personalize.UNSUBSCRIBE_URL}", "“uh-huh.”"):
        assert expected in text
    assert "<p" not in text and "&" not in text


def test_a_test_copy_arrives_with_list_headers_unicode_and_a_harmless_unsubscribe_link(app, runner, smtp):
    change_settings(app, UNSUBSCRIBE_MAILTO="unsubscribe@newsletter.test")
    issue_id = import_sample(runner, "--title", "Small “moments” — matter 💛")

    result = runner.invoke(args=["issue", "test", str(issue_id), "--to", "me@example.org"])

    assert result.exit_code == 0, result.output
    [received] = smtp.wait_for_messages(1)
    message = received.message
    assert message["Subject"] == "[Test] Small “moments” — matter 💛"
    assert message["List-Unsubscribe"] == "<http://newsletter.test/issues/test-copy>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"]
    assert message.get_content_type() == "multipart/alternative"
    for part in (received.text, received.html):
        assert "Small “moments” — matter 💛" in part
        assert "linger—it’s" in part and "“uh-huh.”" in part and "It’s often not the big fights" in part
        assert "📞" in part and "%%" not in part
        assert "http://newsletter.test/issues/test-copy" in part
    with app.app_context():
        assert db.session.get(Issue, issue_id).status == DRAFT


def test_markup_in_the_source_shows_as_text_in_the_mail(app):
    with app.app_context():
        issue = issues.create_from_source('A title <i>here</i>\n<script>alert(1)</script> and %%reader_name%%.\n')
        assert "<script>" not in issue.email_html and "&lt;script&gt;alert(1)&lt;/script&gt;" in issue.email_html
        assert "A title &lt;i&gt;here&lt;/i&gt;" in issue.email_html
        assert personalize.READER_NAME not in issue.email_html + issue.email_text
        assert issue.email_text.count(personalize.UNSUBSCRIBE_URL) == 1


def test_issue_send_at_a_local_time_schedules_it_in_utc(app, runner):
    issue_id = import_sample(runner)

    result = runner.invoke(args=["issue", "send", str(issue_id), "--at", "2030-01-15T09:00"])

    assert result.exit_code == 0, result.output
    assert "Jan 15, 2030 9:00 AM (America/Denver)" in result.output
    issue = load(app, issue_id)
    assert (issue.status, issue.send_at) == (SCHEDULED, datetime(2030, 1, 15, 16, 0))


def test_issue_send_without_at_schedules_it_now(app, runner):
    issue_id = import_sample(runner)
    before = utcnow()

    assert runner.invoke(args=["issue", "send", str(issue_id)]).exit_code == 0

    issue = load(app, issue_id)
    assert issue.status == SCHEDULED and before - timedelta(seconds=1) <= issue.send_at <= utcnow()


@pytest.mark.parametrize("when", ["2001-01-01T09:00", "tomorrow at nine"])
def test_issue_send_refuses_past_or_unreadable_times(app, runner, when):
    issue_id = import_sample(runner)
    result = runner.invoke(args=["issue", "send", str(issue_id), "--at", when])
    assert result.exit_code != 0
    assert load(app, issue_id).status == DRAFT


def test_cancel_duplicate_and_no_edits_once_sending(app_ctx):
    issue = issues.create_from_source(SAMPLE.read_text(encoding="utf-8"))
    issues.schedule(issue, utcnow() + timedelta(days=1))
    issues.cancel(issue)
    assert (issue.status, issue.send_at) == (CANCELED, None)

    copy = issues.duplicate(issue)
    assert (copy.status, copy.title, copy.subject, copy.slug) == (DRAFT, TITLE, issue.subject, f"{issue.slug}-2")
    assert copy.is_copy and not issue.is_copy
    assert copy.body_html == issue.body_html

    copy.status = SENDING
    db.session.flush()
    with pytest.raises(issues.IssueError):
        issues.update(copy, issues.content_of(copy))
    with pytest.raises(issues.IssueError):
        issues.cancel(copy)


def test_slugs_stay_unique(app_ctx):
    first = issues.create_from_source("Hello, world\nText.\n")
    second = issues.create_from_source("Hello world!\nText.\n")
    assert (first.slug, second.slug) == ("hello-world", "hello-world-2")


def test_changing_the_practice_profile_re_renders_unsent_issues(app_ctx):
    issue = issues.create_from_source(SAMPLE.read_text(encoding="utf-8"))
    profile = practice.ensure_profile()
    profile.postal_address = "1 Quiet Lane, Denver, CO 80202"

    assert issues.rerender_unsent() == 1
    assert "1 Quiet Lane, Denver, CO 80202" in issue.email_html and "1 Quiet Lane" in issue.email_text
    assert db.session.scalar(select(Issue.id).where(Issue.email_html.contains("Quiet Lane"))) == issue.id


def test_a_markdown_article_imports_with_its_structure_in_both_parts(app, runner, tmp_path):
    article = tmp_path / "note.md"
    article.write_text("Some words first, *gently*.\n\n## What helps\n\n- Pausing\n- Turning toward\n\n"
                       "> “Small moments matter.”\n\n![A quiet bench](https://example.org/bench.jpg)\n", encoding="utf-8")

    issue = load(app, import_article(runner, article, "--title", "Turning toward"))

    assert (issue.title, issue.source_format) == ("Turning toward", "markdown")
    assert "<em" in issue.email_html and "Pausing</li>" in issue.email_html
    assert 'src="https://example.org/bench.jpg"' in issue.email_html and "max-width:100%" in issue.email_html
    assert "What helps\n==========" in issue.email_text and "- Pausing\n- Turning toward" in issue.email_text
    assert "> “Small moments matter.”" in issue.email_text


@pytest.mark.parametrize("width", [320, 375, 600])
def test_the_sample_mail_never_scrolls_sideways_in_a_real_browser(app_ctx, page, width):
    issue = issues.create_from_source(SAMPLE.read_text(encoding="utf-8"))
    page.set_viewport_size({"width": width, "height": 800})

    page.set_content(issues.preview(issue))

    assert page.evaluate("document.documentElement.scrollWidth") <= width
    body_size = page.locator("p", has_text="Many couples are surprised").evaluate("p => getComputedStyle(p).fontSize")
    assert float(body_size.removesuffix("px")) >= 17
