from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.crypto import FernetToken
from newsletter.core.extensions import db
from newsletter.models.base import utcnow

# What each person in the practice may do (newsletter/accounts/roles.py says which pages each reaches).
ROLES = ("owner", "coordinator", "clinician", "editor")


class AdminUser(UserMixin, db.Model):
    """A person of the practice who signs in to /admin: the therapist, or in a group a colleague with a role."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="owner", server_default="owner")
    # A clinician may write the newsletter only when the owner allowed it for them.
    may_write_newsletter: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # Removed from the practice: kept (without a password) so the audit log still names what they did.
    removed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Part of every session cookie: raising it signs out every browser (sign-out, password or 2FA change).
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # TOTP secret, Fernet-encrypted; confirmed once the admin typed a code from it.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(FernetToken())
    totp_confirmed_at: Mapped[datetime | None]
    # The 30-second step of the last code accepted: a code, once used, is refused (RFC 6238, 5.2).
    totp_last_step: Mapped[int | None]
    # Lockout across IPs: failures counted since failure_window_start; locked until locked_until.
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    failure_window_start: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]

    def get_id(self) -> str:
        """The session carries the version, so a raised version turns old cookies away."""
        return f"{self.id}.{self.session_version}"

    @property
    def is_active(self) -> bool:
        """A removed person's cookie signs nobody in (Flask-Login asks this)."""
        return self.removed_at is None

    @property
    def invitation_pending(self) -> bool:
        """Invited, and has not yet set a password from the link."""
        return not self.password_hash

    @property
    def has_second_factor(self) -> bool:
        return self.totp_confirmed_at is not None


class RecoveryCode(db.Model):
    """A one-time code that stands in for the authenticator app (argon2 hash)."""

    __tablename__ = "admin_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None]
