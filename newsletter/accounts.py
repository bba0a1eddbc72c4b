"""Admin accounts: argon2 password hashes, sign-in checks."""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import AdminUser, utcnow

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the address is unknown, so a wrong address costs as long as a wrong password.
    Made on first use: an argon2 hash takes 64 MB and a second, which workers (that never sign anyone in)
    paid at import."""
    return _hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 10


class WeakPassword(ValueError):
    pass


def set_admin(email: str, password: str) -> AdminUser:
    """Create the admin or reset their password; the caller commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    address = email.strip().lower()
    user = db.session.scalar(select(AdminUser).where(AdminUser.email == address))
    if user is None:
        user = AdminUser(email=address, password_hash="")
        db.session.add(user)
    user.password_hash = _hasher.hash(password)
    return user


def authenticate(email: str, password: str) -> AdminUser | None:
    """The admin with this address and password, or None."""
    user = db.session.scalar(select(AdminUser).where(func.lower(AdminUser.email) == email.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user
