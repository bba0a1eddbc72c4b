"""One reader's copy of an issue, fast: the message is built once per issue with slots, and each
reader's copy is those bytes with the reader's values set in.

Used by sending.py for every reader of an issue; `compose.build_message` with `personalize.fill` and
`personalize.list_headers` is the plain way to build the same message (a test compares the two).
"""
from __future__ import annotations

import binascii
import hashlib
import hmac
import html
import time
from email import policy
from typing import Protocol

from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.mail import compose
from newsletter.mail.transports import dot_stuff
from newsletter.models import Issue
from newsletter.publishing import clicks
from newsletter.readers import personalize, subscriptions

# A worker keeps an issue's built message across batches for this long; then it is built again, so
# the Date header stays close to the time of sending.
KEEP_FOR = 300.0
_cache: dict[tuple, tuple[float, "IssueMail"]] = {}


class Reader(Protocol):
    subscriber_id: int | None
    email: str
    name: str
    token_key: str

    @property
    def id(self) -> int | None: ...


def for_issue(issue: Issue) -> "IssueMail":
    """The issue's IssueMail, from this process's cache while the issue and the settings are unchanged."""
    content = hashlib.sha256("\0".join((issue.subject, issue.email_text, issue.email_html)).encode()).digest()
    key = (issue.id, content, settings(), clicks.enabled())
    now = time.monotonic()
    built_at, cached = _cache.get(key, (0.0, None))
    if cached is None or now - built_at > KEEP_FOR:
        _cache.clear()  # a worker sends one issue at a time: keep only the latest
        cached = IssueMail(issue)
        _cache[key] = (now, cached)
    return cached


class IssueMail:
    """An issue's message as bytes, built once, with slots filled per reader.

    The same message `compose.build_message` would build from `personalize.fill` and `list_headers`
    (headers, multipart/alternative, UTF-8), but the MIME structure is generated once per issue:
    per reader only the To, Message-ID and List-Unsubscribe values and the two bodies
    (quoted-printable, by the C codec) change. Dot-stuffing for SMTP (`stuffed=True`) is likewise
    done once, on the fixed parts; per reader only the short values are looked at.
    """

    _TO = "reader@slot.invalid"
    _ID = "<message-id@slot.invalid>"
    _URL = "https://slot.invalid/unsubscribe"
    _TEXT = "x-text-slot"
    _HTML = "x-html-slot"
    _KEY = "x-reader-key-slot"

    def __init__(self, issue: Issue):
        self.issue_id = issue.id
        self.message_id_key = settings().secret_key.encode()
        # subscriptions.unsubscribe_url and personalize.preferences_url, with their signers built once.
        self.base_url = settings().base_url
        self.link_tokens = tokens.permanent_maker(subscriptions.UNSUBSCRIBE_PURPOSE, personalize.PREFERENCES_PURPOSE)
        # personalize.issue_message_id once, with a slot for the reader's key: per reader it would
        # parse MAIL_FROM again (a sixth of building a message).
        self.message_id_pieces = _split(personalize.issue_message_id(self.issue_id, self._KEY).encode(),
                                        [self._KEY.encode()])
        template = compose.build_message(to=compose.Mailbox(self._TO), subject=issue.subject, text=self._TEXT, html=self._HTML,
                                      message_id=self._ID, headers=personalize.list_headers(self._URL))
        for part in template.iter_parts():
            part.set_content(self._TEXT if part.get_content_subtype() == "plain" else self._HTML,
                             subtype=part.get_content_subtype(), charset="utf-8", cte="quoted-printable")
        raw = template.as_bytes(policy=policy.SMTP)
        self.pieces = _split(raw, [b"To: " + self._TO.encode(), self._ID.encode(), self._URL.encode(),
                                   self._TEXT.encode(), self._HTML.encode()])
        # Every piece but the first starts mid-line, right after a slot: only dots after a line end count.
        self.stuffed_pieces = [piece.replace(b"\n.", b"\n..") for piece in self.pieces]
        self.text = _Body(issue.email_text, as_html=False)
        # Links untouched unless the practice counts clicks (per link, never per reader).
        self.html = _Body(clicks.rewrite(issue.id, issue.email_html) if clicks.enabled() else issue.email_html,
                          as_html=True)

    def message_id(self, subscriber_id: int) -> str:
        """Stable per (issue, reader) and opaque: it does not reveal the reader's id."""
        digest = hmac.digest(self.message_id_key, f"{self.issue_id}:{subscriber_id}".encode(), "sha256").hex()[:20]
        before, after = self.message_id_pieces
        return (before + digest.encode() + after).decode()

    def for_reader(self, reader: Reader, *, stuffed: bool = False) -> bytes:
        """The complete message for one reader, CRLF line ends, ready for SMTP (and DKIM);
        `stuffed`: with SMTP's dot-stuffing done (then not for DKIM or the outbox)."""
        unsubscribe, preferences = self.link_tokens({"id": reader.id, "k": reader.token_key})
        url = f"{self.base_url}/unsubscribe/{unsubscribe}"
        preferences = f"{self.base_url}/preferences/{preferences}"
        name = reader.name or ""
        memo: dict[str, bytes] = {}  # a value looks the same in both bodies unless HTML escapes it
        values = [
            _to_header(reader.email, compose.one_line(name, 100)),  # folded lines start with a space, never "."
            self.message_id(reader.subscriber_id).encode(),
            compose.check_header(url).encode(),
            self.text.encode(url, name, stuffed, preferences, memo),
            self.html.encode(url, name, stuffed, preferences, memo),
        ]
        pieces = self.stuffed_pieces if stuffed else self.pieces
        out = [pieces[0]]
        for value, piece in zip(values, pieces[1:]):
            out.append(value)
            out.append(piece)
        return b"".join(out)


class _Body:
    """A body quoted-printable encoded once, with gaps where each reader's values go.

    Encoding 20 kB per reader was the costliest step of a send. Instead the text between the
    markers is encoded once; per reader only the short values are, and each is set between
    soft line breaks ("=" at a line end), so that every line stays within 76 characters and
    the decoded body is exactly what personalize.fill makes. Every segment and value so starts a
    line, which is what lets each be dot-stuffed on its own.
    """

    def __init__(self, template: str, as_html: bool):
        self.as_html = as_html
        text = template.replace("\r\n", "\n")
        if not text.endswith("\n"):
            text += "\n"
        self.markers = personalize._PATTERN.findall(text)
        self.used = set(self.markers)  # the values this body shows: only those are encoded per reader
        segments = [_qp_before_soft_break(part.encode("utf-8")) for part in personalize._PATTERN.split(text)]
        segments[-1] = segments[-1].rstrip(b"\r\n")
        self.segments = segments
        self.stuffed_segments = [dot_stuff(segment) for segment in segments]

    def encode(self, unsubscribe_url: str, name: str, stuffed: bool = False, preferences_url: str = "",
               memo: dict | None = None) -> bytes:
        """The body for one reader; `memo` shares each value's encoding between the reader's two bodies."""
        values = {personalize.UNSUBSCRIBE_URL: unsubscribe_url, personalize.READER_NAME: name,
                  personalize.PREFERENCES_URL: preferences_url or unsubscribe_url}
        memo = {} if memo is None else memo
        encoded = {marker: self._value(values[marker], stuffed, memo) for marker in self.used}
        segments = self.stuffed_segments if stuffed else self.segments
        out = [segments[0]]
        for marker, segment in zip(self.markers, segments[1:]):
            out += [_SOFT_BREAK, encoded[marker], _SOFT_BREAK, segment]
        return b"".join(out)

    def _value(self, value: str, stuffed: bool, memo: dict) -> bytes:
        if self.as_html:
            value = html.escape(value, quote=True)
        if value not in memo:
            encoded = _qp_before_soft_break(value.encode("utf-8"))
            memo[value] = dot_stuff(encoded) if stuffed else encoded
        return memo[value]


_SOFT_BREAK = b"=\r\n"


def _qp_before_soft_break(data: bytes) -> bytes:
    """Quoted-printable with CRLF line ends, its last line short enough for a soft break to follow."""
    lines = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n").split(b"\r\n")
    last = lines[-1]
    if len(last) > 75:
        cut = 75
        while b"=" in last[cut - 2:cut]:  # never split an =XX escape
            cut -= 1
        lines[-1:] = [last[:cut] + b"=", last[cut:]]
    return b"\r\n".join(lines)


def _split(raw: bytes, slots: list[bytes]) -> list[bytes]:
    """Cut the template at each slot, in order; each must occur exactly once."""
    pieces = []
    for slot in slots:
        if raw.count(slot) != 1:
            raise RuntimeError(f"message template lost its slot {slot!r}")
        before, raw = raw.split(slot)
        pieces.append(before)
    pieces.append(raw)
    return pieces


def _to_header(email: str, name: str) -> bytes:
    folded = compose.address_header("To", compose.Mailbox(email, name)).fold(policy=policy.SMTP)
    return folded.rstrip("\r\n").encode("ascii")
