"""Click counts, only when the practice turns them on (PracticeProfile.count_clicks, off by default).

Then the links of an issue's mail go through /r/<issue>/<link>/<signature>: the issue's id, the link's place
among its links, and an HMAC of both. The address a click goes on to is read from the issue itself, never
from the URL, and a URL whose signature does not match is refused, so the redirect cannot send anyone
anywhere else. The URL is the same for every reader: a click says which link, never who. Off, the mail's
links are left exactly as written.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import itertools
import re

from newsletter.accounts import practice
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.models import Issue, LinkClick

# The href of each link in the issue's HTML that goes to the web (the reader's own links are %%markers%%).
_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)


def enabled() -> bool:
    return bool(practice.profile().count_clicks)


def links(issue_html: str) -> list[str]:
    """The addresses of the issue's counted links, in order (the index is a link's number)."""
    return [html.unescape(match.group(2)) for match in _HREF.finditer(issue_html)]


def rewrite(issue_id: int, issue_html: str) -> str:
    """The issue's HTML with each counted link going through the click redirect."""
    counter = itertools.count()

    def through_redirect(match: re.Match) -> str:
        return match.group(1) + html.escape(click_url(issue_id, next(counter))) + match.group(3)

    return _HREF.sub(through_redirect, issue_html)


def click_url(issue_id: int, index: int) -> str:
    return f"{settings().base_url}/r/{issue_id}/{index}/{signature(issue_id, index)}"


def signature(issue_id: int, index: int) -> str:
    digest = hmac.new(settings().secret_key.encode(), f"click:{issue_id}:{index}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def target(issue_id: int, index: int, given: str) -> str | None:
    """Where a click URL leads: the issue's link of that number, or None when the signature is wrong or the
    issue or link does not exist."""
    if not hmac.compare_digest(signature(issue_id, index), given):
        return None
    issue = db.session.get(Issue, issue_id)
    found = links(issue.email_html) if issue is not None else []
    return found[index] if 0 <= index < len(found) else None


def count(issue_id: int, index: int) -> None:
    """One click on the link; the caller commits."""
    db.session.add(LinkClick(issue_id=issue_id, link=index))
