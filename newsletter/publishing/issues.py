"""Issues: an article becomes a draft, is edited, rendered once, tested, scheduled or canceled.

The whole mail is rendered ONCE per issue into `email_html` (CSS inlined) and `email_text`, with
the per-reader markers of newsletter/personalize.py where each reader's unsubscribe link goes;
the sending engine fills them per reader. Every change that could alter the mail re-renders it.
State changes are guarded in SQL (`WHERE status IN ...`), so an edit or a cancel never races the
dispatcher that moves a due issue to "sending". The caller commits.
"""
from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update

from newsletter.accounts import practice
from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import addresses, compose, outgoing
from newsletter.models import Issue, PracticeProfile, Subscriber, utcnow
from newsletter.models.issues import CANCELED, DELIVERY_SENT, DRAFT, PAUSED, SCHEDULED, SENDING, SENT, Delivery
from newsletter.models.readers import ACTIVE
from newsletter.publishing import articles
from newsletter.readers import personalize

# Issues shown on the web archive: they went (or are going) out to readers.
PUBLISHED = (SENDING, PAUSED, SENT)
# Routes under /issues/ that a slug must never shadow.
RESERVED_SLUGS = {"test-copy", "feed", "new"}
# A test copy's "View in browser" link works this long (seconds) before the issue is sent.
PREVIEW_PURPOSE = "issue-preview"
PREVIEW_MAX_AGE = 30 * 24 * 3600
# A time this far in the past is a typo, not "now".
PAST_GRACE = timedelta(minutes=5)


class IssueError(ValueError):
    """The change is not possible; the message says why, in plain words."""


@dataclass(frozen=True)
class Content:
    """What the therapist edits: everything else about an issue is derived from it."""

    title: str
    subject: str
    preheader: str
    source: str  # the body, without the title line
    source_format: str


def _editable():
    """Issues whose mail can still change: not yet handed to the sending engine."""
    return or_(Issue.status.in_((DRAFT, SCHEDULED)), and_(Issue.status == CANCELED, Issue.dispatched_at.is_(None)))


def is_editable(issue: Issue) -> bool:
    """True while the issue has not gone to any reader."""
    return issue.status in (DRAFT, SCHEDULED) or (issue.status == CANCELED and issue.dispatched_at is None)


# -- creating and editing

def create_from_source(source: str, *, title: str | None = None, filename: str = "",
                       source_format: str | None = None) -> Issue:
    """A draft issue from a plain-text or Markdown article (first line = title)."""
    article = articles.parse(source, source_format, title=title, filename=filename)
    if not article.title:
        raise IssueError("The article is empty: its first line should be its title.")
    if not article.body_source.strip():
        raise IssueError("The article has a title but no text below it.")
    content = Content(title=article.title, subject="", preheader="", source=article.body_source,
                      source_format=article.format)
    return _new_draft(content)


def _new_draft(content: Content) -> Issue:
    slug = unique_slug(content.title)
    issue = Issue(status=DRAFT, slug=slug, **_rendered(content, slug=slug))
    db.session.add(issue)
    db.session.flush()
    return issue


def update(issue: Issue, content: Content) -> Issue:
    """Save edited content and re-render; refused once the issue went to readers.

    A subject or preheader left at its default (the title, the opening sentence) follows the new text."""
    if issue.subject == issue.title and content.subject.strip() == issue.subject:
        content = replace(content, subject="")
    if issue.preheader == articles.opening_sentence(issue.body_text) and content.preheader.strip() == issue.preheader:
        content = replace(content, preheader="")
    slug = issue.slug if issue.title == content.title.strip() else unique_slug(content.title, exclude=issue.id)
    values = _rendered(content, slug=slug)
    _guarded(issue, _editable(), slug=slug, **values)
    return issue


def preview(issue: Issue, content: Content | None = None) -> str:
    """The mail as a reader sees it, or as it would look with `content` (nothing is saved)."""
    html = issue.email_html if content is None else _rendered(content, slug=issue.slug)["email_html"]
    return personalize.fill(html, unsubscribe_url=_test_unsubscribe_url(), name="", as_html=True)


def rerender(issue: Issue) -> Issue:
    """Render the mail again from the issue's saved content (after the practice profile changed)."""
    return update(issue, content_of(issue))


def rerender_unsent() -> int:
    """Re-render every issue not yet sent (the practice profile changed); returns how many."""
    issues = db.session.scalars(select(Issue).where(_editable())).all()
    for issue in issues:
        rerender(issue)
    return len(issues)


def content_of(issue: Issue) -> Content:
    return Content(title=issue.title, subject=issue.subject, preheader=issue.preheader, source=issue.source,
                   source_format=issue.source_format)


def duplicate(issue: Issue) -> Issue:
    """A new draft with the same content and headline (to send again, or to start from)."""
    copy = _new_draft(content_of(issue))
    copy.is_copy = True
    return copy


def delete_draft(issue: Issue) -> None:
    """Delete an issue that never went to any reader (a draft, or one canceled before sending)."""
    deleted = db.session.execute(
        sql_delete(Issue).where(Issue.id == issue.id, _editable(), Issue.status != SCHEDULED)
        .execution_options(synchronize_session=False)
    ).rowcount
    if deleted != 1:
        db.session.refresh(issue)
        raise IssueError("Only a draft can be deleted. Cancel a scheduled issue first; a sent one stays on record.")
    db.session.expunge(issue)


def audience_size() -> int:
    """How many readers an issue sent now would go to: the active readers."""
    return db.session.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.status == ACTIVE)) or 0


# -- scheduling

def schedule(issue: Issue, send_at: datetime) -> Issue:
    """Schedule the issue at `send_at` (naive UTC), rendered afresh; the dispatcher sends it then."""
    now = utcnow()
    if send_at < now - PAST_GRACE:
        raise IssueError("That time has already passed. Choose a time in the future, or send now.")
    values = _rendered(content_of(issue), slug=issue.slug)
    _guarded(issue, _editable(), status=SCHEDULED, send_at=max(send_at, now), canceled_at=None, **values)
    return issue


def send_now(issue: Issue) -> Issue:
    """Schedule the issue for now: the dispatcher picks it up on its next round."""
    return schedule(issue, utcnow())


def cancel(issue: Issue) -> Issue:
    """Cancel a draft or scheduled issue (a sending issue is paused or canceled by the sending engine)."""
    _guarded(issue, Issue.status.in_((DRAFT, SCHEDULED)), status=CANCELED, canceled_at=utcnow(), send_at=None)
    return issue


def local_datetime(value: datetime) -> datetime:
    """A naive-UTC time as a naive time in the practice's timezone (for date and time inputs)."""
    return value.replace(tzinfo=UTC).astimezone(practice.timezone()).replace(tzinfo=None)


def parse_local_time(value: str) -> datetime:
    """An ISO-8601 time as naive UTC; without a zone it is read in the practice's timezone."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise IssueError(f"{value!r} is not a date and time like 2026-12-01T09:00.") from exc
    if parsed.tzinfo is None:
        return practice.to_utc(parsed)
    return parsed.astimezone(UTC).replace(tzinfo=None)


# -- test copies

def send_test(issue: Issue, to: str) -> int:
    """Queue one test copy ("[Test] " subject, harmless unsubscribe link, a "View in browser" link
    that works before the issue is sent); returns the outgoing mail id."""
    unsubscribe_url = _test_unsubscribe_url()
    web_link, link = re.compile(re.escape(web_url(issue)) + r"(?![\w-])"), preview_url(issue)

    def test_copy(template: str, as_html: bool) -> str:
        filled = personalize.fill(template, unsubscribe_url=unsubscribe_url, name="", as_html=as_html)
        return filled if is_published(issue) else web_link.sub(lambda _: link, filled)

    row = outgoing.queue(
        kind="issue_test",
        to=addresses.normalize(to),
        subject="[Test] " + issue.subject,
        text=test_copy(issue.email_text, as_html=False),
        html=test_copy(issue.email_html, as_html=True),
        # No mailto: a test copy's "unsubscribe" must not reach the practice as a real request.
        headers=personalize.list_headers(unsubscribe_url, mailto=False),
    )
    return row.id


def _test_unsubscribe_url() -> str:
    """Test copies unsubscribe nobody: their link leads to a page that says so."""
    return settings().base_url + "/issues/test-copy"


# -- the web archive

def published(limit: int | None = None) -> list[Issue]:
    """Issues that went out, newest first."""
    query = select(Issue).where(Issue.status.in_(PUBLISHED)).order_by(
        Issue.send_at.desc().nulls_last(), Issue.id.desc())
    return list(db.session.scalars(query.limit(limit) if limit else query))


def web_page_by_slug(slug: str) -> Issue | None:
    """The issue /issues/<slug> shows: a published one, or one canceled after it reached some readers (the
    "View in browser" link in their mail keeps working, though the archive and the feed no longer list it)."""
    issue = db.session.scalar(select(Issue).where(Issue.slug == slug, Issue.status.in_((*PUBLISHED, CANCELED))))
    return issue if issue is not None and (issue.status != CANCELED or reached_readers(issue)) else None


def reached_readers(issue: Issue) -> bool:
    """True when at least one reader was sent this issue."""
    sent = select(Delivery.id).where(Delivery.issue_id == issue.id, Delivery.status == DELIVERY_SENT).limit(1)
    return db.session.scalar(sent) is not None


def is_published(issue: Issue) -> bool:
    return issue.status in PUBLISHED


def preview_url(issue: Issue) -> str:
    """A signed web link to the issue that works before it is sent (for test copies)."""
    return f"{web_url(issue)}?preview={tokens.make(PREVIEW_PURPOSE, issue.id)}"


def by_preview_token(slug: str, token: str) -> Issue | None:
    """The issue a test copy's signed web link shows, if the link is genuine and not too old (canceled or not:
    the test copy's reader is the practice)."""
    try:
        issue_id = tokens.read(PREVIEW_PURPOSE, token, max_age=PREVIEW_MAX_AGE)
    except tokens.BadToken:
        return None
    issue = db.session.get(Issue, tokens.row_id(issue_id)) if tokens.row_id(issue_id) else None
    return issue if issue is not None and issue.slug == slug else None


def web_url(issue: Issue) -> str:
    return f"{settings().base_url}/issues/{issue.slug}"


# -- slugs

def slugify(title: str) -> str:
    """A readable URL part: ascii letters and digits joined by dashes, at most 80 characters."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > 80:
        slug = slug[:80].rsplit("-", 1)[0]
    return slug or "issue"


def unique_slug(title: str, exclude: int | None = None) -> str:
    """slugify(title), with -2, -3... when another issue (or a route) has it."""
    base = slugify(title)
    query = select(Issue.slug).where(Issue.slug.like(f"{base}%"))
    if exclude is not None:
        query = query.where(Issue.id != exclude)
    taken = set(db.session.scalars(query)) | RESERVED_SLUGS
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    return slug


# -- rendering, once per issue

def _rendered(content: Content, *, slug: str) -> dict:
    """Every column derived from the content: the article parts and the whole mail."""
    title = " ".join(content.title.split())
    if not title:
        raise IssueError("Please give the issue a title.")
    base_url = settings().base_url
    body = articles.parse_body(content.source, content.source_format, base_url=base_url)
    values = {
        "title": title[:300],
        "subject": compose.one_line(content.subject or title, 300),
        "preheader": compose.one_line(content.preheader or body.opening, 500),
        "source": content.source,
        "source_format": content.source_format,
        "signature": body.signature,
        "body_html": str(body.html),
        "body_text": body.text,
        "postscript_html": str(body.postscript_html),
        "postscript_text": body.postscript_text,
    }
    html, text = render_mail(values, web_url=f"{base_url}/issues/{slug}")
    values.update(email_html=html, email_text=text)
    return values


def render_mail(issue: dict, *, web_url: str) -> tuple[str, str]:
    """The whole mail (HTML with CSS inlined, and text) with markers for each reader's values.

    The templates get a random stand-in for the unsubscribe link; every "%%" left after rendering
    came from text someone typed and is broken, then the stand-in becomes the real marker.
    """
    stand_in = "unsubscribe-" + secrets.token_hex(12)
    preferences_stand_in = "preferences-" + secrets.token_hex(12)
    profile = practice.profile()
    context = {
        "issue": issue,
        "signature_lines": [line for line in profile.signature.split("\n") if line.strip()],
        "contact_items": contact_items(profile),
        "web_url": web_url,
        "contact_url": settings().base_url + "/contact",
        "home_url": settings().base_url + "/",
        "site_name": settings().base_url.split("://", 1)[-1].removeprefix("www."),
        "unsubscribe_url": stand_in,
        "preferences_url": preferences_stand_in,
    }
    rendered = compose.render("issue", **context)

    def finish(part: str) -> str:
        return (articles.neutralize(part).replace(stand_in, personalize.UNSUBSCRIBE_URL)
                .replace(preferences_stand_in, personalize.PREFERENCES_URL))

    return finish(rendered.html), finish(rendered.text)


def contact_items(profile: PracticeProfile) -> list[dict]:
    """The contact lines of the signature: icon, text, link (None when there is nothing to link)."""
    items = []
    if profile.postal_address:
        items.append({"icon": "📍", "text": profile.postal_address, "href": None})
    if profile.website:
        shown = profile.website.split("://", 1)[-1].rstrip("/")
        href = profile.website if "://" in profile.website else f"https://{profile.website}"
        items.append({"icon": "🌐", "text": shown, "href": href})
    if profile.email:
        items.append({"icon": "📧", "text": profile.email, "href": f"mailto:{profile.email}"})
    if profile.phone:
        digits = re.sub(r"\D", "", profile.phone)
        href = f"tel:+1{digits}" if len(digits) == 10 else f"tel:+{digits}"
        items.append({"icon": "📞", "text": profile.phone, "href": href if digits else None})
    return items


def _guarded(issue: Issue, condition, **values) -> None:
    """Write `values` only if the issue still meets `condition` (the dispatcher may have taken it)."""
    changed = db.session.execute(
        sql_update(Issue).where(Issue.id == issue.id, condition).values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(issue)
    if changed != 1:
        raise IssueError(f"This issue is {issue.status} now, so it can't be changed that way.")
