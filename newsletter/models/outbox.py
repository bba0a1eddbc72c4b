from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from newsletter.core.crypto import Encrypted, FernetToken, lookup_hash
from newsletter.core.extensions import db
from newsletter.models.base import utcnow

MAIL_PENDING = "pending"
MAIL_SENT = "sent"
MAIL_FAILED = "failed"


class OutgoingMail(db.Model):
    """One transactional message (confirmation, inquiry forward...), written in the same
    transaction as the change that caused it and sent by the worker or, failing that, the sweeper."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (Index("ix_outgoing_mail_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # The address is personal data (an inquirer's, a reader's): encrypted, and found by its keyed hash.
    recipient: Mapped[str] = mapped_column(Encrypted())
    recipient_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The whole RFC 5322 message, Fernet-encrypted by newsletter/mail/outgoing.py: it may carry an inquirer's words.
    message: Mapped[bytes] = mapped_column(FernetToken())
    status: Mapped[str] = mapped_column(String(20), default=MAIL_PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Encrypted(), default="")  # a refusal may quote the address

    @validates("recipient")
    def _hash_recipient(self, _key: str, address: str) -> str:
        self.recipient_hash = lookup_hash(address)
        return address

    @classmethod
    def addressed_to(cls, address: str):
        """The SQL condition for mail to `address` (any case): one indexed lookup, nothing decrypted."""
        return cls.recipient_hash == lookup_hash(address)
