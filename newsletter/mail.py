"""Mail: render a template trio, build a safe RFC 5322 message, and hand it to a transport.

Templates live in templates/emails/ as NAME.subject.txt, NAME.txt and NAME.html. The text
part is rendered without HTML escaping; the HTML part has its CSS inlined by premailer here,
in one place. Every header value goes through `check_header` first: this Python predates the
email package's header-injection fixes (CVE-2024-6923).
"""
from __future__ import annotations

import base64
import logging
import re
import smtplib
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterable, Mapping

import premailer
from flask import current_app, render_template
from jinja2 import TemplateNotFound

# cssutils reports every vendor property it does not know; that is noise, not news.
logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
logging.getLogger("cssutils").setLevel(logging.CRITICAL)

log = logging.getLogger(__name__)


class UnsafeHeader(ValueError):
    """A header value would have broken out of its header."""


class TemporaryFailure(Exception):
    """The server said "try later" (4xx) or the connection failed: retry.

    `recipient_only` is set when only this recipient was deferred (4xx at RCPT: a full mailbox,
    greylisting), so other readers' messages can go on.
    """

    def __init__(self, code: int, message: str, recipient_only: bool = False):
        super().__init__(f"{code} {message}")
        self.code = code
        self.recipient_only = recipient_only


class PermanentFailure(Exception):
    """The server refused the recipient for good (5xx): do not retry this address."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{code} {message}")
        self.code = code


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
    printable = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(printable.split())[:limit]


def inline_css(html: str) -> str:
    """Inline the CSS into style attributes; media queries stay in <style>, !important intact."""
    return premailer.Premailer(
        html,
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
    ).transform()


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
    return Mailbox.parse(current_app.config["MAIL_FROM"])


def practice_inbox() -> Mailbox:
    """PRACTICE_INBOX, where inquiries and digests go."""
    return Mailbox.parse(current_app.config["PRACTICE_INBOX"])


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
) -> EmailMessage:
    """A multipart/alternative (or text-only) UTF-8 message; every header is written by this module."""
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
    return msg


def envelope_sender() -> str:
    return sender().address


def dkim_sign(message: bytes, config: Mapping) -> bytes:
    """Prepend a DKIM-Signature when DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY are set."""
    if not (config.get("DKIM_DOMAIN") and config.get("DKIM_SELECTOR") and config.get("DKIM_PRIVATE_KEY")):
        return message
    import dkim

    key = config["DKIM_PRIVATE_KEY"]
    if not key.lstrip().startswith("-----"):
        key = Path(key).read_text()
    signature = dkim.sign(
        message,
        config["DKIM_SELECTOR"].encode(),
        config["DKIM_DOMAIN"].encode(),
        key.encode(),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
                         b"list-unsubscribe-post", b"list-id", b"reply-to", b"mime-version", b"content-type"],
    )
    return signature + message


class SMTPTransport:
    """One SMTP connection, opened on first use and kept for a batch; errors are classified."""

    def __init__(self, config: Mapping):
        self.config = config
        self.connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        host, port, timeout = cfg["SMTP_HOST"], cfg["SMTP_PORT"], cfg["SMTP_TIMEOUT"]
        try:
            if cfg["SMTP_SECURITY"] == "ssl":
                conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(host, port, timeout=timeout)
                if cfg["SMTP_SECURITY"] == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if cfg["SMTP_USERNAME"]:
                conn.login(cfg["SMTP_USERNAME"], cfg["SMTP_PASSWORD"])
        except smtplib.SMTPResponseException as exc:
            # A refused greeting or login is our configuration's problem, never a reader's bounce.
            raise TemporaryFailure(exc.smtp_code, f"the server refused our connection or login: {_text(exc.smtp_error)}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(0, f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self.connection is None:
            self.connection = self._connect()
        try:
            refused = self.connection.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (550, b"refused"))
            self._reset()
            raise _classify(code, text, recipient_only=True) from exc
        except smtplib.SMTPSenderRefused as exc:
            # MAIL FROM refused: every message would fail the same way; not the reader's fault.
            self._reset()
            raise TemporaryFailure(exc.smtp_code, f"the server refused our sender: {_text(exc.smtp_error)}") from exc
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            self.close()
            raise TemporaryFailure(0, f"connection lost: {exc}") from exc
        if refused:
            code, text = refused[recipient]
            raise _classify(code, text, recipient_only=True)

    def _reset(self) -> None:
        """After a refusal, start the next message from a clean state (or a new connection)."""
        try:
            if self.connection is not None:
                self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class OutboxTransport:
    """The embedded default: every message becomes an .eml file, viewable in the admin."""

    def __init__(self, config: Mapping):
        self.folder = Path(config["OUTBOX_DIR"])

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(message)
        partial.rename(self.folder / name)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classify(code: int, text: bytes | str, recipient_only: bool = False) -> Exception:
    """5xx for this recipient's message is permanent; anything else is worth another try."""
    if 500 <= code < 600:
        return PermanentFailure(code, _text(text))
    return TemporaryFailure(code, _text(text), recipient_only=recipient_only)


def transport(config: Mapping | None = None) -> SMTPTransport | OutboxTransport:
    """SMTP when SMTP_HOST is set, else the outbox folder."""
    config = config or current_app.config
    return SMTPTransport(config) if config["SMTP_HOST"] else OutboxTransport(config)


def outbox_messages(limit: int = 200) -> Iterable[Path]:
    """The newest .eml files in the outbox folder, newest first."""
    folder = Path(current_app.config["OUTBOX_DIR"])
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.eml"), reverse=True)[:limit]

