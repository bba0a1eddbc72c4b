"""Every message is UTF-8 and every header is written by newsletter/mail.py: checked on the bytes
that go out, because this Python's email package decodes RFC 2047 words into CR/LF (CVE-2024-6923)."""
from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses

import pytest

from newsletter.mail import compose, transports
from tests.helpers import HOSTILE_NAMES
from tests.support import settings_of

# Names a visitor could type into a form, as the attacker in issue 9 did.


def header_block(raw: bytes) -> list[bytes]:
    """The header lines as written, continuation lines joined to their header."""
    block = raw.split(b"\r\n\r\n", 1)[0]
    return re.split(rb"\r\n(?![ \t])", block)


def written_headers(raw: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode().lower() for line in header_block(raw)]


@pytest.mark.parametrize("value", ["a\r\nBcc: victim@example.com", "a\nX: y", "a\rb", "a\0b", "a\u2028b"])
def test_addresses_with_line_breaks_are_refused(app_ctx, value):
    with pytest.raises(compose.UnsafeHeader):
        compose.build_message(to=compose.Mailbox(value), subject="Hello", text="hi")
    with pytest.raises(compose.UnsafeHeader):
        compose.raw_header("List-Id", value)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_any_display_name_gives_one_address_per_header_and_an_intact_header_block(app_ctx, name):
    message = compose.build_message(to=compose.Mailbox("reader@example.com", name), subject=f"New inquiry from {name}",
                                 text="hi", reply_to=compose.Mailbox("dana@example.org", name))
    raw = message.as_bytes(policy=policy.SMTP)

    assert written_headers(raw) == ["from", "to", "subject", "date", "message-id", "reply-to",
                                    "content-type", "content-transfer-encoding", "mime-version"]
    assert all(byte < 128 for byte in raw.split(b"\r\n\r\n", 1)[0]), "headers must be 7-bit (RFC 2047 encoded)"
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    for header, address in (("To", "reader@example.com"), ("Reply-To", "dana@example.org")):
        [value] = parsed.get_all(header)
        assert [addr for _, addr in getaddresses([str(value)])] == [address]
        assert [a.addr_spec for a in value.addresses] == [address]
    assert parsed.get_content().strip() == "hi"


def test_names_and_subjects_read_back_as_typed(app_ctx):
    message = compose.build_message(to=compose.Mailbox("reader@example.com", "Zoë O’Brien"),
                                 subject="Small moments — “connection” 📍", text="Curly ’quotes’ — 📧")
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes(policy=policy.SMTP))

    assert parsed["To"].addresses[0].display_name == "Zoë O’Brien"
    assert parsed["Subject"] == "Small moments — “connection” 📍"
    assert parsed.get_content().strip() == "Curly ’quotes’ — 📧"


def test_long_headers_are_folded_under_78_characters(app_ctx):
    message = compose.build_message(to=compose.Mailbox("reader@example.com", "Ünïcode " * 30),
                                 subject="A long plain subject line " * 6, text="hi")
    lines = message.as_bytes(policy=policy.SMTP).split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert max(len(line) for line in lines) <= 78


def test_a_configured_sender_must_be_exactly_one_address():
    assert compose.Mailbox.parse("Inner Calm <news@example.org>") == compose.Mailbox("news@example.org", "Inner Calm")
    for bad in ("a@example.org, b@example.org", "no address", "x@example.org\r\nBcc: y@example.org"):
        with pytest.raises(compose.UnsafeHeader):
            compose.Mailbox.parse(bad)


def test_outbox_transport_writes_one_eml_file_per_message(app_ctx, tmp_path):
    transport = transports.OutboxTransport(settings_of({"OUTBOX_DIR": str(tmp_path)}))
    transport.send("a@example.com", "b@example.com", b"Subject: x\r\n\r\nbody")
    transport.send("a@example.com", "c@example.com", b"Subject: y\r\n\r\nbody")

    assert sorted(p.read_bytes()[:10] for p in tmp_path.glob("*.eml")) == [b"Subject: x", b"Subject: y"]
    assert not list(tmp_path.glob(".*.part"))
