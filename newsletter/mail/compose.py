"""Mail: render a template trio and build a safe RFC 5322 message (newsletter/transports.py sends it).

Templates live in templates/emails/ as NAME.subject.txt, NAME.txt and NAME.html. The text
part is rendered without HTML escaping; the HTML part has its CSS inlined by premailer here,
in one place. Every header value goes through `check_header` first: this Python predates the
email package's header-injection fixes (CVE-2024-6923).
"""
from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Mapping

from flask import render_template
from jinja2 import TemplateNotFound

from newsletter.core.config import Settings, dkim_key_text, settings

# cssutils reports every vendor property it does not know; that is noise, not news.
logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
logging.getLogger("cssutils").setLevel(logging.CRITICAL)

log = logging.getLogger(__name__)


class UnsafeHeader(ValueError):
    """A header value would have broken out of its header."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None


# Line breaks (and NUL, and Unicode's line and paragraph separators) would end the header.
_UNSAFE_IN_HEADER = re.compile("[\r\n\0\u2028\u2029]")


def check_header(value: str) -> str:
    """Return `value` if it is safe in a header, else raise UnsafeHeader."""
    if _UNSAFE_IN_HEADER.search(value):
        raise UnsafeHeader("line breaks are not allowed in a mail header")
    return value


def one_line(value: str, limit: int = 200) -> str:
    """Fold user text into a single line without control characters (for subjects and names)."""
    printable = value if value.isprintable() else "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(printable.split())[:limit]


def inline_css(html: str) -> str:
    """Inline the CSS into style attributes; media queries stay in <style>, !important intact.

    Every mail leaves here with `<!doctype html>` (lxml drops it): without it a client renders in quirks mode."""
    import premailer  # here, not at the top: premailer, lxml and cssutils weigh 20 MB in processes that never render

    inlined = premailer.Premailer(
        html,
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
    ).transform()
    return "<!doctype html>\n" + inlined


def render(prefix: str, *, inline: bool = True, **context) -> RenderedMail:
    """Render emails/PREFIX.subject.txt, .txt and (if present) .html with the same context."""
    subject = one_line(render_template(f"emails/{prefix}.subject.txt", **context), 300)
    text = render_template(f"emails/{prefix}.txt", **context)
    try:
        html = render_template(f"emails/{prefix}.html", **context)
    except TemplateNotFound:  # a text-only mail
        html = None
    else:
        if inline:
            html = inline_css(html)
    return RenderedMail(subject=subject, text=text, html=html)


# -- headers: one way to write every header that carries text or an address
#
# This Python (3.11.7) predates the email package's header-injection fixes (CVE-2024-6923), and its
# header parser decodes RFC 2047 encoded words found in a value: a name typed as
# "=?utf-8?q?=0D=0AReply-To:...?=" becomes a real CR LF when the message is written, and a long
# quoted name loses its quotes when folded, so its commas split it into extra addresses. So the
# package never parses our headers: `Header` values are encoded and folded here, and the package
# stores and writes them as they are (email.policy: a value with a `name` attribute is a header
# object, stored unchanged and folded by its own `fold`).

MAX_LINE = 78
# RFC 5322 atext: a display name made only of these (and spaces) needs neither quotes nor encoding.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
# addr-spec as email-validator leaves it: ASCII, no spaces, quotes, brackets or commas, one @.
_ADDR_SPEC = re.compile(r"[A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_WORD_BYTES = 45  # UTF-8 bytes per encoded word: "=?utf-8?b?" + 60 base64 characters + "?=" = 72


class Header(str):
    """A header value built here, as the tokens it may be folded between."""

    def __new__(cls, name: str, tokens: list[str]) -> "Header":
        for token in tokens:
            if not token or not token.isascii() or " " in token or _UNSAFE_IN_HEADER.search(token):
                raise UnsafeHeader(f"{name}: not a safe header token")
        value = super().__new__(cls, " ".join(tokens))
        value.name, value.tokens = name, tokens
        return value

    def fold(self, *, policy) -> str:
        """Name and value on lines of at most MAX_LINE characters where the tokens allow."""
        lines, line = [], f"{self.name}:"
        for token in self.tokens:
            if len(line) + 1 + len(token) > MAX_LINE and line.strip() != f"{self.name}:":
                lines.append(line)
                line = ""
            line += " " + token
        lines.append(line)
        return policy.linesep.join(lines) + policy.linesep


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 B-encoded words of at most 72 characters, never splitting a character.

    A word ends after a space where one is near, and carries that space: decoders drop the
    whitespace between encoded words, so the space must be inside one.
    """
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            cut = chunk.rfind(b" ") + 1
            if cut < _WORD_BYTES // 2:
                cut = len(chunk)
            words.append(chunk[:cut])
            chunk = chunk[cut:]
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words if word]


def _is_plain(words: list[str]) -> bool:
    """ASCII words that no mail reader could take for anything but themselves."""
    return all(word.isascii() and word.isprintable() and "=?" not in word for word in words)


def text_header(name: str, text: str) -> Header:
    """An unstructured header (Subject) from any text: one line, encoded words where needed."""
    words = one_line(text, 998).split()
    if not words:
        return Header(name, ["(no", "subject)"])  # tokens never hold a space
    return Header(name, words if _is_plain(words) else _encoded_words(" ".join(words)))


@dataclass(frozen=True)
class Mailbox:
    """One address with an optional display name: what every From, To and Reply-To holds."""

    address: str
    name: str = ""

    def __post_init__(self) -> None:
        if not _ADDR_SPEC.fullmatch(self.address) or len(self.address) > 254:
            raise UnsafeHeader("not a plain e-mail address")

    @classmethod
    def parse(cls, value: str) -> "Mailbox":
        """A configured sender or inbox ("Name <addr>" or "addr"); exactly one address."""
        found = getaddresses([check_header(value)])
        if len(found) != 1 or not found[0][1]:
            raise UnsafeHeader(f"{value!r} is not exactly one e-mail address")
        name, address = found[0]
        return cls(address=address, name=name)

    def phrase(self) -> list[str]:
        return phrase_tokens(self.name)


def phrase_tokens(name: str) -> list[str]:
    """A display name as header tokens: atoms as typed, anything else RFC 2047 encoded."""
    words = one_line(name, 100).split()
    if not words:
        return []
    if all(_ATOM.fullmatch(word) and "=?" not in word for word in words):
        return words
    return _encoded_words(" ".join(words))


def address_header(name: str, mailbox: Mailbox) -> Header:
    """A From, To or Reply-To header naming exactly one mailbox, whatever its display name holds."""
    phrase = mailbox.phrase()
    return Header(name, [*phrase, f"<{mailbox.address}>"] if phrase else [mailbox.address])


def raw_header(name: str, value: str) -> Header:
    """A header we composed from checked parts (Message-ID, List-*, In-Reply-To): ASCII, one line."""
    check_header(value)
    if not value.isascii():
        raise UnsafeHeader(f"{name}: only ASCII is allowed here")
    if not value.split():  # a Message-ID or List-* with nothing in it is a bug, not a header
        raise UnsafeHeader(f"{name}: empty")
    return Header(name, value.split())


def sender() -> Mailbox:
    """MAIL_FROM, the sender of every message."""
    return Mailbox.parse(settings().mail_from)


def practice_inbox() -> Mailbox:
    """PRACTICE_INBOX, where inquiries and digests go."""
    return Mailbox.parse(settings().practice_inbox)


def domain_of(mailbox: Mailbox) -> str:
    return mailbox.address.rpartition("@")[2]


def build_message(
    *,
    to: Mailbox,
    subject: str,
    text: str,
    html: str | None = None,
    from_: Mailbox | None = None,
    reply_to: Mailbox | None = None,
    message_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    calendar: bytes | None = None,
) -> EmailMessage:
    """A multipart/alternative (or text-only) UTF-8 message; every header is written by this module.

    `calendar`, an iCalendar object, is the last alternative, as iMIP (RFC 6047 2.4) wants it:
    text/calendar with its METHOD as the `method` parameter and a charset."""
    from_ = from_ or sender()
    msg = EmailMessage()
    msg["From"] = address_header("From", from_)
    msg["To"] = address_header("To", to)
    msg["Subject"] = text_header("Subject", subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = raw_header("Message-ID", message_id or make_msgid(domain=domain_of(from_)))
    if reply_to:
        msg["Reply-To"] = address_header("Reply-To", reply_to)
    for name, value in (headers or {}).items():
        msg[name] = raw_header(check_header(name), value)
    msg.set_content(text, charset="utf-8")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    if calendar is not None:
        from icalendar import Calendar  # only here: booking invitations, never in a web process

        method = str(Calendar.from_ical(calendar)["METHOD"])
        msg.add_alternative(calendar.decode("utf-8"), subtype="calendar", charset="utf-8",
                            params={"method": method})
    return msg


def envelope_sender() -> str:
    return sender().address


def dkim_sign(message: bytes, config: Settings) -> bytes:
    """Prepend a DKIM-Signature when DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY are set."""
    if not config.dkim_enabled:
        return message
    import dkim

    signature = dkim.sign(
        message,
        config.dkim_selector.encode(),
        config.dkim_domain.encode(),
        dkim_key_text(config.dkim_private_key).encode(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
                         b"list-unsubscribe-post", b"list-id", b"reply-to", b"mime-version", b"content-type"],
    )
    return signature + message
