"""One issue, many readers: the mail is rendered once per issue with placeholders, and each
reader's copy is made by substitution (fast), with the list headers every issue carries."""
from __future__ import annotations

import html
import re

from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.mail import compose

# Markers the issue templates put where per-reader values go. Neither Markdown nor our
# escaping produces them from an article's text.
UNSUBSCRIBE_URL = "%%unsubscribe_url%%"
READER_NAME = "%%reader_name%%"
PREFERENCES_URL = "%%preferences_url%%"
_PATTERN = re.compile("|".join(re.escape(m) for m in (UNSUBSCRIBE_URL, READER_NAME, PREFERENCES_URL)))
PREFERENCES_PURPOSE = "preferences"


def fill(template: str, *, unsubscribe_url: str, name: str, as_html: bool, preferences_url: str = "") -> str:
    """Replace the markers in one pass; values are HTML-escaped for the HTML part. Previews and
    test copies have no reader: their preferences link is the unsubscribe stand-in's."""
    values = {UNSUBSCRIBE_URL: unsubscribe_url, READER_NAME: name, PREFERENCES_URL: preferences_url or unsubscribe_url}
    if as_html:
        values = {k: html.escape(v, quote=True) for k, v in values.items()}
    return _PATTERN.sub(lambda m: values[m.group(0)], template)


def preferences_url(reader) -> str:
    """The reader's permanent link to their preferences page (rotating `token_key` revokes it, as for unsubscribing)."""
    token = tokens.make_permanent(PREFERENCES_PURPOSE, {"id": reader.id, "k": reader.token_key})
    return f"{settings().base_url}/preferences/{token}"


def issue_message_id(issue_id: int, reader_key: str) -> str:
    """The same Message-ID for the same issue and reader, so a resend after a crash is one message."""
    domain = compose.domain_of(compose.sender())
    return f"<issue-{issue_id}.{reader_key}@{domain}>"


def list_headers(unsubscribe_url: str, *, mailto: bool = True) -> dict[str, str]:
    """List-Unsubscribe (URL, and mailto where configured and wanted), RFC 8058 one-click, List-Id."""
    targets = [f"<{unsubscribe_url}>"]
    if mailto and settings().unsubscribe_mailto:
        targets.append(f"<mailto:{settings().unsubscribe_mailto}?subject=unsubscribe>")
    list_name = compose.phrase_tokens(compose.sender().name or "Newsletter")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": " ".join([*list_name, f"<{settings().list_id}>"]),
    }
