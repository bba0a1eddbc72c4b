"""Admin accounts: argon2 password hashes, sign-in checks, lockout, the TOTP second factor."""
from __future__ import annotations

import hmac
import io
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from newsletter.core import crypto
from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.models import AdminUser, RecoveryCode, utcnow

_hasher = PasswordHasher()
# Recovery codes carry 50 random bits, so a lighter argon2 cost keeps ten checks quick without weakening them.
_code_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when the address is unknown, so a wrong address costs as long as a wrong password.
    Made on first use: an argon2 hash takes 64 MB and a second, which workers (that never sign anyone in)
    paid at import."""
    return _hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 10
RECOVERY_CODE_COUNT = 10
ISSUER = "Newsletter admin"


class WeakPassword(ValueError):
    pass


@dataclass(frozen=True)
class Lockout:
    attempts: int
    minutes: int


@dataclass
class SignIn:
    """The outcome of a password (or code) check: the admin, or why not."""

    user: AdminUser | None = None
    locked: bool = False
    just_locked: bool = False
    account: AdminUser | None = None  # the account the attempt was against, when the address is known
    recovery_code: bool = False  # the second step passed with a recovery code (now used up)

    @property
    def ok(self) -> bool:
        return self.user is not None


def find_admin(email: str) -> AdminUser | None:
    address = email.strip().lower()
    return db.session.scalar(select(AdminUser).where(func.lower(AdminUser.email) == address).with_for_update())


def set_admin(email: str, password: str, *, reset_second_factor: bool = False, role: str | None = None) -> AdminUser:
    """Create a person (an owner unless `role` says otherwise) or reset their password, and their role when
    given (signing out every browser); someone removed from the practice comes back. The caller commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    address = email.strip().lower()
    user = find_admin(address)
    if user is None:
        user = AdminUser(email=address, password_hash="", session_version=0, failed_attempts=0)
        db.session.add(user)
    if role is not None or user.role is None:
        user.role = role or "owner"
    user.removed_at = None
    user.password_hash = _hasher.hash(password)
    user.locked_until = None
    user.failed_attempts = 0
    user.session_version = (user.session_version or 0) + 1
    if reset_second_factor:
        remove_second_factor(user)
    return user


def authenticate(email: str, password: str, lockout: Lockout) -> SignIn:
    """Check a password. A locked account is refused even with the right password; the caller commits.

    The attempt is counted before the password is checked, so simultaneous tries never check more
    passwords than the lockout allows; a right password gives its attempt back."""
    user = find_admin(email)
    counted = user is not None and _count_attempt(user, lockout)
    try:
        _hasher.verify(user.password_hash if counted else _dummy_hash(), password)
        right = counted
    except (VerificationError, InvalidHashError):
        right = False
    if user is None:
        return SignIn()
    if not counted:
        return SignIn(locked=True, account=user)
    if not right:
        return _failed(user, lockout)
    claim(user, AdminUser.failed_attempts > 0, failed_attempts=AdminUser.failed_attempts - 1)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return SignIn(user=user, account=user)


def check_second_factor(user: AdminUser, code: str, lockout: Lockout) -> SignIn:
    """Check a code from the authenticator app, or a recovery code (used up); the caller commits.
    Counted before it is checked, as in `authenticate`; a complete sign-in forgets the count."""
    if not _count_attempt(user, lockout):
        return SignIn(locked=True, account=user)
    if verify_totp(user, code):
        return SignIn(user=user, account=user)
    if _use_recovery_code(user, code):
        return SignIn(user=user, account=user, recovery_code=True)
    return _failed(user, lockout)


def signed_in(user: AdminUser) -> None:
    """A complete sign-in: forget earlier failures."""
    user.failed_attempts = 0
    user.failure_window_start = None
    user.last_login_at = utcnow()


def is_locked(user: AdminUser) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


def claim(row, condition, **values) -> bool:
    """Set `values` (Python values or SQL expressions) on `row` in one conditional UPDATE, if `condition`
    still holds in the database. Of simultaneous claims on one row, exactly one wins the row's state:
    the single-use rule for recovery codes, TOTP steps and lockout counters. The caller commits."""
    model = type(row)
    returned = db.session.execute(
        update(model).where(model.id == row.id, condition).values(**values)
        .returning(*(getattr(model, name) for name in values))
        .execution_options(synchronize_session=False)
    ).first()
    if returned is None:
        return False
    for name, value in zip(values, returned):
        set_committed_value(row, name, value)
    return True


def _not_locked(now):
    return or_(AdminUser.locked_until.is_(None), AdminUser.locked_until <= now)


def _count_attempt(user: AdminUser, lockout: Lockout) -> bool:
    """Count one sign-in attempt against the account, whatever IP it came from, unless it is locked or
    already at the limit (then False: the attempt is refused unchecked). Failures older than the
    window are forgotten."""
    now = utcnow()
    window_over = or_(AdminUser.failure_window_start.is_(None),
                      AdminUser.failure_window_start < now - timedelta(minutes=lockout.minutes))
    return claim(user, and_(_not_locked(now), or_(window_over, AdminUser.failed_attempts < lockout.attempts)),
                 failed_attempts=case((window_over, 1), else_=AdminUser.failed_attempts + 1),
                 failure_window_start=case((window_over, now), else_=AdminUser.failure_window_start))


def _failed(user: AdminUser, lockout: Lockout) -> SignIn:
    """A counted attempt failed; the one that reached the limit locks the account (and only that one
    reports `just_locked`, so one lockout sends one notice)."""
    now = utcnow()
    if user.failed_attempts < lockout.attempts:
        return SignIn(account=user)
    just_locked = claim(user, _not_locked(now), locked_until=now + timedelta(minutes=lockout.minutes),
                        failed_attempts=0, failure_window_start=None)
    return SignIn(locked=True, just_locked=just_locked, account=user)


def queue_lockout_notice(user: AdminUser, practice_inbox: str, minutes: int, admin_url: str) -> int:
    """Tell the practice that an admin account was locked; returns the mail's id."""
    message = outgoing.queue_template("admin_lockout", to=practice_inbox, email=user.email, minutes=minutes,
                                    locked_until=user.locked_until, admin_url=admin_url)
    db.session.flush()
    return message.id


def end_sessions(user: AdminUser) -> None:
    """Every cookie issued for this admin so far stops working."""
    user.session_version = (user.session_version or 0) + 1


def load_session_user(session_id: str) -> AdminUser | None:
    """The admin a session cookie names, if that cookie is still current (see AdminUser.get_id)."""
    user_id, _, version = session_id.partition(".")
    if not (user_id.isdigit() and version.isdigit()) or len(user_id) > 18:
        return None
    user = db.session.get(AdminUser, int(user_id))
    if user is None or user.session_version != int(version):
        return None
    return user


# -- the second factor

def start_second_factor(user: AdminUser) -> str:
    """A new (not yet confirmed) TOTP secret for the set-up page; the caller commits."""
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = crypto.encrypt(secret)
    user.totp_confirmed_at = user.totp_last_step = None
    return secret


def pending_secret(user: AdminUser) -> str | None:
    return crypto.decrypt_text(user.totp_secret_encrypted) or None


def provisioning_qr_svg(user: AdminUser) -> str:
    """The set-up QR code (an otpauth:// URI) as SVG, made here: no outside service sees the secret."""
    uri = pyotp.TOTP(pending_secret(user) or "").provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", scale=5, border=2, xmldecl=False)
    return svg.getvalue().decode("ascii")


def verify_totp(user: AdminUser, code: str) -> bool:
    """A code of the current 30-second step or the one either side (clocks drift), used at most once:
    someone who watched it typed cannot sign in with it too. The caller commits."""
    secret = pending_secret(user)
    digits = "".join(code.split())
    if not (secret and len(digits) == 6 and digits.isdigit()):
        return False
    totp, now = pyotp.TOTP(secret), time.time()
    steps = [int(now // totp.interval) + offset for offset in (-1, 0, 1)]
    matched = [step for step in steps if hmac.compare_digest(totp.at(step * totp.interval), digits)]
    if not matched:
        return False
    step = matched[-1]
    return claim(user, or_(AdminUser.totp_last_step.is_(None), AdminUser.totp_last_step < step),
                 totp_last_step=step)


def confirm_second_factor(user: AdminUser, code: str) -> list[str] | None:
    """Turn the second factor on when `code` matches; returns the new recovery codes (shown once)."""
    if user.totp_secret_encrypted is None or not verify_totp(user, code):
        return None
    user.totp_confirmed_at = utcnow()
    end_sessions(user)
    return _new_recovery_codes(user)


def remove_second_factor(user: AdminUser) -> None:
    user.totp_secret_encrypted = None
    user.totp_confirmed_at = user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == user.id))
    end_sessions(user)


def _new_recovery_codes(user: AdminUser) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == user.id))
    codes = [_format_code(secrets.token_hex(5)) for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(admin_id=user.id, code_hash=_code_hasher.hash(_normal(code))) for code in codes)
    return codes


def _format_code(raw: str) -> str:
    return f"{raw[:5]}-{raw[5:]}"


def _normal(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _use_recovery_code(user: AdminUser, code: str) -> bool:
    typed = _normal(code)
    if len(typed) != 10:
        return False
    unused = db.session.scalars(
        select(RecoveryCode).where(RecoveryCode.admin_id == user.id, RecoveryCode.used_at.is_(None))
    ).all()
    for candidate in unused:
        try:
            _code_hasher.verify(candidate.code_hash, typed)
        except (VerificationError, InvalidHashError):
            continue
        return claim(candidate, RecoveryCode.used_at.is_(None), used_at=utcnow())
    return False


def recovery_codes_left(user: AdminUser) -> int:
    return db.session.scalar(
        select(func.count()).select_from(RecoveryCode)
        .where(RecoveryCode.admin_id == user.id, RecoveryCode.used_at.is_(None))
    ) or 0
