"""Mail: render a template trio, build a safe RFC 5322 message, and hand it to a transport.

Templates live in templates/emails/ as NAME.subject.txt, NAME.txt and NAME.html. The text
part is rendered without HTML escaping; the HTML part has its CSS inlined by premailer here,
in one place. Every header value goes through `check_header` first: this Python predates the
email package's header-injection fixes (CVE-2024-6923).
"""
from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
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
    """Fold user text into a single safe header line (for subjects and display names)."""
    cleaned = " ".join(value.replace("\0", " ").split())
    return cleaned[:limit]


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


def format_address(address: str, name: str = "") -> str:
    """A To/From/Reply-To value from a checked address and an optional display name."""
    check_header(address)
    if name:
        return str(Address(display_name=one_line(name, 100), addr_spec=address))
    return address


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def build_message(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    sender: str | None = None,
    reply_to: str | None = None,
    message_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative (or text-only) UTF-8 message with every header checked."""
    sender = sender or current_app.config["MAIL_FROM"]
    msg = EmailMessage()
    msg["From"] = check_header(sender)
    msg["To"] = check_header(to)
    msg["Subject"] = check_header(subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = check_header(message_id or make_msgid(domain=domain_of(sender)))
    if reply_to:
        msg["Reply-To"] = check_header(reply_to)
    for name, value in (headers or {}).items():
        msg[check_header(name)] = check_header(value)
    msg.set_content(text, charset="utf-8")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def envelope_sender() -> str:
    return parseaddr(current_app.config["MAIL_FROM"])[1]


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

