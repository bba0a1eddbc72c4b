"""The suppression list: bounced, complained and erased addresses are never mailed again.

The list keeps only a hash of each address, so an erased reader leaves no address behind,
yet a new signup, an import or an issue can still tell that the address must not be mailed.
"""
from __future__ import annotations

import hashlib

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.models import ConsentEvent, Subscriber, Suppression, utcnow
from newsletter.models.readers import ACTIVE, BOUNCED, COMPLAINED, PENDING

REASONS = ("bounced", "complained", "erased", "manual")
# A reader whose address bounces or complains gets that status, so lists and counts show why.
_STATUS_FOR_REASON = {"bounced": BOUNCED, "complained": COMPLAINED}


def email_hash(email: str) -> str:
    """A stable hash of the address, so the list keeps no address in the clear."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def is_suppressed(email: str) -> bool:
    """True when the address must never be mailed (one indexed lookup)."""
    return db.session.scalar(select(Suppression.id).where(Suppression.email_hash == email_hash(email))) is not None


def suppress(email: str, reason: str, detail: str = "") -> Suppression:
    """Add the address to the list (idempotent) and stop its reader; the caller commits."""
    if reason not in REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    digest = email_hash(email)
    row = db.session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if row is None:
        row = Suppression(email_hash=digest, reason=reason, detail=detail[:500])
        db.session.add(row)
        db.session.flush()
    status = _STATUS_FOR_REASON.get(reason)
    if status:
        reader = db.session.scalar(select(Subscriber).where(func.lower(Subscriber.email) == email.strip().lower()))
        if reader is not None and reader.status in (ACTIVE, PENDING):
            reader.status = status
            reader.confirm_nonce = None
            if status == COMPLAINED:  # marking mail as spam is asking to stop: an unsubscribe
                reader.unsubscribed_at = utcnow()
            db.session.add(consent_event(reader, reason, detail))
    return row


def consent_event(reader: Subscriber, action: str, wording: str) -> ConsentEvent:
    """The record of a change the system made for the reader (a bounce, a complaint, a provider's unsubscribe)."""
    return ConsentEvent(subscriber=reader, action=action, source="system", wording=wording[:500])
