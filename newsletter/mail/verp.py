"""VERP: a return path per message, signed, so a vague bounce still names the message it answers."""
from __future__ import annotations

import hashlib
import hmac
import re

from newsletter.core.config import settings

VERP_MARK = "+b-"
_VERP_RE = re.compile(r"\+b-([dm])(\d{1,12})-([0-9a-f]{12})@", re.IGNORECASE)


def _verp_signature(kind: str, number: int) -> str:
    key = settings().secret_key.encode()
    return hmac.new(key, f"newsletter.verp:{kind}{number}".encode(), hashlib.sha256).hexdigest()[:12]


def verp(sender: str, *, delivery_id: int | None = None, mail_id: int | None = None) -> str:
    """The envelope sender for one message: `sender` itself unless BOUNCE_VERP is on."""
    config = settings()
    if not config.bounce_verp:
        return sender
    kind, number = ("d", delivery_id) if delivery_id is not None else ("m", mail_id)
    local, _, domain = sender.rpartition("@")
    return f"{local}{VERP_MARK}{kind}{number}-{_verp_signature(kind, number)}@{config.bounce_domain or domain}"


def read_verp(address: str) -> tuple[str, int] | None:
    """("d", delivery id) or ("m", outgoing mail id) from a return path we signed, else None."""
    found = _VERP_RE.search(address or "")
    if not found:
        return None
    kind, number, signature = found.group(1).lower(), int(found.group(2)), found.group(3).lower()
    if not hmac.compare_digest(signature, _verp_signature(kind, number)):
        return None
    return kind, number
