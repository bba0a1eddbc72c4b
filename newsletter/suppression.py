"""The suppression list: bounced, complained and erased addresses are never mailed again."""
from __future__ import annotations

import hashlib

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Suppression


def email_hash(email: str) -> str:
    """A stable hash of the address, so the list keeps no address in the clear."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def is_suppressed(email: str) -> bool:
    return db.session.scalar(select(Suppression.id).where(Suppression.email_hash == email_hash(email))) is not None


def suppress(email: str, reason: str, detail: str = "") -> Suppression:
    """Add the address to the list (idempotent); the caller commits."""
    digest = email_hash(email)
    row = db.session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if row is None:
        row = Suppression(email_hash=digest, reason=reason, detail=detail[:500])
        db.session.add(row)
        db.session.flush()
    return row
