"""Every message is UTF-8 and no header can be built from unchecked input."""
from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from newsletter import mail


@pytest.mark.parametrize("value", ["a\r\nBcc: victim@example.com", "a\nX: y", "a\rb", "a\0b", "a\u2028b"])
def test_header_values_with_line_breaks_are_refused(app_ctx, value):
    with pytest.raises(mail.UnsafeHeader):
        mail.build_message(to="reader@example.com", subject=value, text="hi")
    with pytest.raises(mail.UnsafeHeader):
        mail.build_message(to=value, subject="Hello", text="hi")


def test_display_names_are_folded_to_one_line_and_encoded(app_ctx):
    to = mail.format_address("reader@example.com", "Dana\r\nBcc: victim@example.com ☀️")
    message = mail.build_message(to=to, subject="Small moments — “connection” 📍", text="Curly ’quotes’ — 📧")
    raw = message.as_bytes(policy=policy.SMTP)
    parsed = BytesParser(policy=policy.default).parsebytes(raw)

    assert "Bcc" not in parsed
    assert parsed["To"].addresses[0].addr_spec == "reader@example.com"
    assert parsed["Subject"] == "Small moments — “connection” 📍"
    assert parsed.get_content().strip() == "Curly ’quotes’ — 📧"
    assert all(byte < 128 for byte in raw.split(b"\r\n\r\n", 1)[0]), "headers must be 7-bit (RFC 2047 encoded)"


def test_outbox_transport_writes_one_eml_file_per_message(app_ctx, tmp_path):
    transport = mail.OutboxTransport({"OUTBOX_DIR": str(tmp_path)})
    transport.send("a@example.com", "b@example.com", b"Subject: x\r\n\r\nbody")
    transport.send("a@example.com", "c@example.com", b"Subject: y\r\n\r\nbody")

    assert sorted(p.read_bytes()[:10] for p in tmp_path.glob("*.eml")) == [b"Subject: x", b"Subject: y"]
    assert not list(tmp_path.glob(".*.part"))
