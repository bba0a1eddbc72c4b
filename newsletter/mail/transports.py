"""Where messages go: an SMTP server, or (embedded default) `.eml` files in the outbox folder.

Both offer one small interface, `Transport`: `send(sender, recipient, message)` raises
`PermanentFailure` (5xx: this recipient's message is refused for good) or `TemporaryFailure`
(anything worth another try); `close()`; and use as a context manager. `open_transport()` picks one.
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
import time
import uuid
from pathlib import Path
from typing import Callable, Protocol

from newsletter.core.config import Settings, settings


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


class Transport(Protocol):
    dot_stuffed: bool  # True when send() takes messages whose lines starting with "." are already doubled

    def send(self, sender: str, recipient: str, message: bytes, *, stuffed: bool = False,
             before_end: Callable[[], None] | None = None, then: tuple[str, str] | None = None,
             while_waiting: Callable[[], None] | None = None) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Transport": ...

    def __exit__(self, *exc_info) -> None: ...


_LINE_START_DOT = re.compile(rb"(?m)^\.")


def dot_stuff(data: bytes) -> bytes:
    """SMTP's transparency rule (RFC 5321 4.5.2): a line starting with "." gets a second one."""
    return _LINE_START_DOT.sub(b"..", data)


class SMTPTransport:
    """One SMTP connection, opened on first use and kept for a batch; errors are classified.

    Where the server offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA go in one write
    and their three answers are read together; and a caller that names the next message's envelope
    (`then`) has it written right behind this message's end of data (RFC 2920 3.1: message content
    may open a group, DATA must close it), so a run of messages costs one round trip each. The next
    envelope's answers are read by the next `send`, never by this one: this message's result is its
    own end-of-data answer. Messages are sent as given, CRLF line ends expected; a caller that
    dot-stuffed them already (sending.py does it once per issue) says so with `stuffed=True`.
    """

    dot_stuffed = True

    def __init__(self, config: Settings):
        self.config = config
        self.connection: smtplib.SMTP | None = None
        self.pipelining = False
        self.announced: tuple[str, str] | None = None  # the envelope written ahead, its answers not read yet

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        host, port, timeout = cfg.smtp_host, cfg.smtp_port, cfg.smtp_timeout
        try:
            if cfg.smtp_security == "ssl":
                conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(host, port, timeout=timeout)
                if cfg.smtp_security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            conn.ehlo_or_helo_if_needed()
            if cfg.smtp_username:
                conn.login(cfg.smtp_username, cfg.smtp_password)
        except smtplib.SMTPResponseException as exc:
            # A refused greeting or login is our configuration's problem, never a reader's bounce.
            raise TemporaryFailure(exc.smtp_code, f"the server refused our connection or login: {_text(exc.smtp_error)}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(0, f"cannot connect to {host}:{port}: {exc}") from exc
        self.pipelining = conn.has_extn("pipelining")
        # The end of data follows the message in a write of its own: sent at once, not held back for
        # the ACK of the message's last segment (Nagle's algorithm, 40 ms with a delayed ACK).
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def send(self, sender: str, recipient: str, message: bytes, *, stuffed: bool = False,
             before_end: Callable[[], None] | None = None, then: tuple[str, str] | None = None,
             while_waiting: Callable[[], None] | None = None) -> None:
        """Send one message; `before_end` runs once the server took the envelope and the message, before
        the end of data that makes it deliver: if it raises, the connection is dropped mid-DATA and the
        server discards the message. `then` is the (sender, recipient) the next call will send to,
        written ahead where pipelining. `while_waiting` runs while the server takes in the message, after
        its end of data went and before the answer is read (the caller builds the next message then);
        it must not raise: the message may be delivered already."""
        body = message if stuffed else dot_stuff(message)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        try:
            replies = self._envelope(sender, recipient)
            if replies[-1][0] == 354 and len(replies) == 3 and replies[1][0] in (250, 251) and replies[0][0] == 250:
                self.connection.send(body)  # nothing is delivered before its end: it overlaps `before_end`
                self._before_end(before_end)
                self._end_data(then)
                if while_waiting is not None:
                    while_waiting()
                code, text = self.connection.getreply()  # this message's own answer, whatever follows it
                if code == 250:
                    return
                if code == 421:  # the server closes the connection
                    self._drop()
                raise _classify(code, text)  # no RSET: the answer to the end of data ends the transaction
            if replies[-1][0] == 354:  # DATA went through after a refusal (a lax server): end it empty
                self.connection.send(b".\r\n")
                self.connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            self.close()
            raise TemporaryFailure(0, f"connection lost: {exc}") from exc
        self._reset()
        (mail_code, mail_text), *rest = replies
        if mail_code != 250:
            # MAIL FROM refused: every message would fail the same way; not the reader's fault.
            raise TemporaryFailure(mail_code, f"the server refused our sender: {_text(mail_text)}")
        rcpt_code, rcpt_text = rest[0]
        if rcpt_code not in (250, 251):
            raise _classify(rcpt_code, rcpt_text, recipient_only=True)
        raise _classify(*rest[1])

    def _envelope(self, sender: str, recipient: str) -> list[tuple[int, bytes]]:
        """The answers to this message's MAIL FROM, RCPT TO and DATA: read where they were written ahead
        with the last message's data, else sent now. Written ahead for another message (the caller retries
        the last one, or skips), the connection is dropped: the server waits for data that must not come."""
        if self.announced is not None:
            if self.announced == (sender, recipient):
                self.announced = None
                return [self.connection.getreply() for _ in range(3)]
            self._drop()
        if self.connection is None:
            self.connection = self._connect()
        return self._commands(_envelope_commands(sender, recipient))

    def _end_data(self, then: tuple[str, str] | None) -> None:
        """The end of data, and behind it the next message's envelope where pipelining."""
        if then is None or not self.pipelining:
            self.connection.send(b".\r\n")
            return
        self.announced = then
        self.connection.send(b"".join([b".\r\n", *_envelope_commands(*then)]))

    def _commands(self, commands: list[bytes]) -> list[tuple[int, bytes]]:
        """Send the envelope commands and read their answers: all at once when pipelining, else
        one by one, stopping at the first refusal."""
        if self.pipelining:
            self.connection.send(b"".join(commands))
            return [self.connection.getreply() for _ in commands]
        replies = []
        for command in commands:
            self.connection.send(command)
            replies.append(self.connection.getreply())
            if replies[-1][0] not in (250, 251, 354):
                break
        return replies

    def _before_end(self, before_end: Callable[[], None] | None) -> None:
        if before_end is None:
            return
        try:
            before_end()
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        """Close without QUIT: in DATA it would be message text; the server drops the unfinished message."""
        self.connection.close()
        self.connection, self.announced = None, None

    def _reset(self) -> None:
        """After a refusal, start the next message from a clean state (or a new connection)."""
        try:
            if self.connection is not None:
                self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self.announced is not None:
            self._drop()  # an envelope written ahead for a message that will not come
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
    """The embedded default: every message becomes an .eml file in the outbox folder (OUTBOX_DIR), viewable in
    the admin. The one place that knows the folder: the admin lists and reads it through `messages` and `message`."""

    dot_stuffed = False

    def __init__(self, config: Settings):
        self.folder = Path(config.outbox_dir)

    def messages(self, limit: int | None = 200) -> list[Path]:
        """The newest .eml files, newest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.eml"), reverse=True)[:limit]

    def message(self, name: str) -> Path | None:
        """The file of one message by its name, or None (a name with a path in it is no message's)."""
        path = self.folder / name
        return path if "/" not in name and name.endswith(".eml") and path.is_file() else None

    def send(self, sender: str, recipient: str, message: bytes, *, stuffed: bool = False,
             before_end: Callable[[], None] | None = None, then: tuple[str, str] | None = None,
             while_waiting: Callable[[], None] | None = None) -> None:
        """Write the message as a file; there is no server to wait for, so `while_waiting` is not called."""
        if stuffed:
            raise ValueError("the outbox keeps messages as written: pass them without dot-stuffing")
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        partial = self.folder / f".{name}.part"
        try:
            if before_end is not None:
                before_end()
            partial.write_bytes(message)
            partial.rename(self.folder / name)
        except OSError:  # a full disk: leave no half message behind, the outbox retries later
            partial.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _envelope_commands(sender: str, recipient: str) -> list[bytes]:
    return [f"MAIL FROM:<{sender}>\r\n".encode("ascii"), f"RCPT TO:<{recipient}>\r\n".encode("ascii"), b"DATA\r\n"]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _classify(code: int, text: bytes | str, recipient_only: bool = False) -> Exception:
    """5xx for this recipient's message is permanent; anything else is worth another try."""
    if 500 <= code < 600:
        return PermanentFailure(code, _text(text))
    return TemporaryFailure(code, _text(text), recipient_only=recipient_only)


def open_transport(config: Settings | None = None) -> Transport:
    """SMTP when SMTP_HOST is set, else the outbox folder."""
    config = config or settings()
    return SMTPTransport(config) if config.smtp_host else OutboxTransport(config)
