"""Her blog's feed: the practice website's RSS or Atom feed is polled, and each new post becomes a draft
issue (never sent without her). A post is claimed by a unique row (`FeedPost`) before its draft is made,
so two polls at once, or a post that comes back to the feed, never make a second draft.

The download is bounded (FEED_TIMEOUT, FEED_MAX_BYTES) and conditional (ETag, Last-Modified); a feed
that fails is stored as an error for the admin page, never raised. The caller commits.
"""
from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from newsletter.core.extensions import db
from newsletter.models import BlogFeed, FeedPost, utcnow
from newsletter.publishing import issues

FEED_TIMEOUT = 10  # seconds to connect, and between bytes of the answer
FEED_MAX_BYTES = 2 * 1024 * 1024
DRAFTS_PER_POLL = 10
# The first poll of a feed makes a draft of its latest post only: the older ones are recorded as seen.
FIRST_POLL_DRAFTS = 1
USER_AGENT = "newsletter-feed-reader/1 (+drafts for the practice's own newsletter)"
URL_MAX = 500


class FeedError(ValueError):
    """The feed could not be read; the message says why, in plain words."""


@dataclass
class PollResult:
    """What one poll did."""

    drafts: list[int] = field(default_factory=list)
    not_modified: bool = False
    error: str = ""


def feed() -> BlogFeed:
    """The one feed row (made on first use)."""
    row = db.session.scalar(select(BlogFeed).order_by(BlogFeed.id).limit(1))
    if row is None:
        row = BlogFeed(url="", etag="", last_modified="", error="")
        db.session.add(row)
        db.session.flush()
    return row


def current() -> BlogFeed | None:
    """The feed row if there is one (reads only: pages call it on GET)."""
    return db.session.scalar(select(BlogFeed).order_by(BlogFeed.id).limit(1))


def set_url(url: str) -> BlogFeed:
    """Keep the feed's address (empty: no feed); a new address starts afresh (first poll, no validators)."""
    url = (url or "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > URL_MAX or re.search(r"\s", url):
            raise FeedError("Please give the full address of the feed, starting with https://, "
                            "like https://www.example.com/feed.xml.")
    row = feed()
    if row.url != url:
        row.url, row.etag, row.last_modified, row.checked_at, row.error, row.error_at = url, "", "", None, "", None
    return row


def recent_posts(limit: int = 20) -> list[FeedPost]:
    return list(db.session.scalars(select(FeedPost).order_by(FeedPost.id.desc()).limit(limit)))


def poll() -> PollResult:
    """Fetch the feed if one is set and make a draft of each new post; a failure is stored on the row."""
    row = current()
    if row is None or not row.url:
        return PollResult()
    try:
        answer = _fetch(row)
        result = PollResult(not_modified=answer is None)
        if answer is not None:
            result.drafts, complete = _draft_new_posts(_parse(answer.content), first=row.checked_at is None)
            # Posts left for the next poll: ask for the whole feed again then, not "changed since".
            row.etag = answer.headers.get("ETag", "")[:300] if complete else ""
            row.last_modified = answer.headers.get("Last-Modified", "")[:100] if complete else ""
    except FeedError as exc:
        row.error, row.error_at = str(exc), utcnow()
        return PollResult(error=str(exc))
    row.checked_at, row.error, row.error_at = utcnow(), "", None
    return result


@dataclass
class _Answer:
    content: bytes
    headers: dict


def _fetch(row: BlogFeed) -> _Answer | None:
    """The feed's bytes, or None when the site says nothing changed (304)."""
    import requests  # here, not at the top: every worker imports this module; few practices poll a feed

    headers = {"User-Agent": USER_AGENT, "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9"}
    if row.etag:
        headers["If-None-Match"] = row.etag
    if row.last_modified:
        headers["If-Modified-Since"] = row.last_modified
    try:
        with requests.get(row.url, headers=headers, timeout=FEED_TIMEOUT, stream=True) as response:
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                raise FeedError(f"The website answered {response.status_code} for the feed's address.")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > FEED_MAX_BYTES:
                    raise FeedError(f"The feed is larger than {FEED_MAX_BYTES // (1024 * 1024)} MB: it was not read.")
            return _Answer(bytes(body), dict(response.headers))
    except requests.RequestException as exc:
        raise FeedError(f"The feed could not be fetched ({type(exc).__name__}): is the website up and the "
                        "address right?") from exc


def _parse(content: bytes) -> list:
    import feedparser  # see _fetch

    parsed = feedparser.parse(content)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        raise FeedError("That address does not give an RSS or Atom feed.")
    return list(parsed.entries)


def _draft_new_posts(entries: list, first: bool) -> tuple[list[int], bool]:
    """Drafts of the posts never seen, oldest first, at most DRAFTS_PER_POLL (then False: more are waiting).
    On a feed's first poll only its newest post becomes a draft; the others are recorded as seen."""
    made: list[int] = []
    newest = entries[:FIRST_POLL_DRAFTS] if first else entries
    for entry in reversed(entries):
        key = _key(entry)
        if db.session.scalar(select(FeedPost.id).where(FeedPost.entry_key == key)) is not None:
            continue
        wanted = any(entry is other for other in newest)
        if wanted and len(made) >= DRAFTS_PER_POLL:
            return made, False
        issue_id = _claim(key, entry, wanted)
        if issue_id is not None:
            made.append(issue_id)
    return made, True


def _key(entry) -> str:
    ident = entry.get("id") or entry.get("link") or entry.get("title") or ""
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()


def _claim(key: str, entry, make_draft: bool) -> int | None:
    """Record the post as seen and, when asked, make its draft; None if another poll claimed it first."""
    try:
        with db.session.begin_nested():
            post = FeedPost(entry_key=key, link=_safe_link(entry.get("link", ""))[:1000], created_at=utcnow())
            db.session.add(post)
            db.session.flush()
            if make_draft:
                post.issue_id = _draft(entry, post.link).id
                db.session.flush()
    except IntegrityError:
        return None
    return post.issue_id


def _draft(entry, link: str):
    title = " ".join(html.unescape(re.sub(r"<[^>]*>", " ", entry.get("title", ""))).split())[:200]
    title = title or "A post from my website"
    contents = entry.get("content") or []
    body_html = contents[0].get("value", "") if contents else entry.get("summary", "")
    body = to_markdown(body_html, base=link)
    source = (body or "(The feed gave no text for this post.)") + (
        f"\n\nThis article first appeared on [my website]({link})." if link else "")
    return issues.create_from_source(source, title=title, source_format="markdown")


def _safe_link(url: str) -> str:
    url = (url or "").strip()
    return url if urlsplit(url).scheme in ("http", "https") and not re.search(r"[\s()<>]", url) else ""


# -- a post's HTML as the issue's Markdown

_BLOCKS = {"p", "div", "section", "article", "figure", "figcaption", "table", "tr", "pre", "hr"}
_HEADINGS = {"h1": "## ", "h2": "## ", "h3": "### ", "h4": "#### ", "h5": "#### ", "h6": "#### "}
_SKIP = {"script", "style", "iframe", "noscript", "svg", "form", "button", "object", "template"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_LINE_MARK = re.compile(r"^(\s*)([#+\-=])")
_LINE_NUMBER = re.compile(r"^(\s*\d+)([.)])")


class _Markdown(HTMLParser):
    """Paragraphs, headings, lists, quotes, emphasis and links; everything else as its text."""

    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base, self.out, self.line = base, [], []
        self.skipping, self.quote, self.lists, self.links = 0, 0, [], []

    def _break(self) -> None:
        text = " ".join("".join(self.line).split())
        if text:
            self.out.append("> " * self.quote + text)
        self.line = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCKS or tag in _HEADINGS or tag == "br":
            self._break()
            self.line.append(_HEADINGS.get(tag, ""))
        elif tag in ("ul", "ol"):
            self._break()
            self.lists.append([tag, 0])
        elif tag == "li":
            self._break()
            kind = self.lists[-1] if self.lists else ["ul", 0]
            kind[1] += 1
            self.line.append("  " * max(len(self.lists) - 1, 0) + ("- " if kind[0] == "ul" else f"{kind[1]}. "))
        elif tag == "blockquote":
            self._break()
            self.quote += 1
        elif tag in ("strong", "b"):
            self.line.append("**")
        elif tag in ("em", "i"):
            self.line.append("*")
        elif tag == "a":
            href = _safe_link(urljoin(self.base, attrs.get("href") or "")) if attrs.get("href") else ""
            self.links.append(href)
            self.line.append("[" if href else "")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in _BLOCKS or tag in _HEADINGS or tag == "li":
            self._break()
        elif tag in ("ul", "ol"):
            self._break()
            if self.lists:
                self.lists.pop()
        elif tag == "blockquote":
            self._break()
            self.quote = max(self.quote - 1, 0)
        elif tag in ("strong", "b"):
            self.line.append("**")
        elif tag in ("em", "i"):
            self.line.append("*")
        elif tag == "a" and self.links:
            href = self.links.pop()
            self.line.append(f"]({href})" if href else "")

    def handle_data(self, data):
        if self.skipping:
            return
        text = _MARKDOWN_SPECIAL.sub(r"\\\1", data)
        if not "".join(self.line).strip():  # at the start of a line, text must not read as a heading or list
            text = _LINE_NUMBER.sub(r"\1\\\2", _LINE_MARK.sub(r"\1\\\2", text))
        self.line.append(text)

    def markdown(self) -> str:
        self._break()
        blocks, previous = [], None
        for line in self.out:  # list items stay together; every other block is its own paragraph
            item = bool(re.match(r"(> )*\s*(- |\d+\. )", line))
            blocks.append(("\n" if item and previous else "\n\n") + line if blocks else line)
            previous = item
        return "".join(blocks).strip()


def to_markdown(fragment: str, base: str = "") -> str:
    """A post's HTML as Markdown (scripts, styles and frames dropped; only http(s) links kept)."""
    parser = _Markdown(base)
    parser.feed(fragment or "")
    parser.close()
    return parser.markdown()
