"""Encryption at rest for what people tell the practice about themselves (Fernet, INQUIRY_ENCRYPTION_KEY).

One mechanism: a model declares such a column `Encrypted()` and reads and writes plain values; the
database only ever sees Fernet tokens. `lookup_hash` is the keyed hash kept beside a column only where
an equality lookup needs it. `rotate` re-encrypts every such column under the newest key.

cryptography is imported on first use: its library costs a process 9 MB, and a worker that only sends
issues never encrypts or decrypts anything.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

from sqlalchemy import LargeBinary, Table, literal, select, type_coerce, update
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

from newsletter.core.config import encryption_keys, settings
from newsletter.core.extensions import db

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _multi_fernet(setting: str):
    from cryptography.fernet import Fernet, MultiFernet

    # Several comma-separated keys allow rotation: the first encrypts, all decrypt.
    return MultiFernet([Fernet(key) for key in encryption_keys(setting)])


def _fernet():
    return _multi_fernet(settings().inquiry_encryption_key)


def encrypt(value: str | bytes) -> bytes:
    """A Fernet token of `value` under the newest key."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _fernet().encrypt(data)


def decrypt(token: bytes) -> bytes:
    """The bytes under a token made with any configured key; cryptography's InvalidToken otherwise."""
    return _fernet().decrypt(bytes(token))


def decrypt_text(token: bytes | None) -> str:
    """The text under a token, "" for none."""
    return decrypt(token).decode("utf-8") if token else ""


class Unreadable(str):
    """What a stored value reads as when no configured key decrypts it: the page says so instead of failing."""


UNREADABLE = Unreadable("[cannot be read: stored under an encryption key no longer in INQUIRY_ENCRYPTION_KEY]")


class Encrypted(TypeDecorator):
    """A column of personal data: code reads and writes text (or, with `flag`, a yes/no); the database
    holds a Fernet token. Equality in SQL cannot work on it (each token is different): see lookup_hash."""

    impl = LargeBinary
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator):
        """Only IS NULL and IS NOT NULL: an equality, LIKE or ORDER BY on tokens would find or sort nothing."""

        def operate(self, op, *other, **kwargs):
            if op not in (operators.is_, operators.is_not):
                raise TypeError(f"{self.expr} is encrypted: SQL cannot compare or sort it (keep a lookup_hash)")
            return super().operate(op, *other, **kwargs)

    def __init__(self, flag: bool = False):
        super().__init__()
        self.flag = flag

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return encrypt(("1" if value else "0") if self.flag else value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        from cryptography.fernet import InvalidToken

        try:
            plain = decrypt(value).decode("utf-8")
        except InvalidToken:
            log.warning("a stored value could not be decrypted with any key in INQUIRY_ENCRYPTION_KEY")
            return None if self.flag else UNREADABLE
        return plain == "1" if self.flag else plain


class FernetToken(TypeDecorator):
    """Bytes a service encrypts itself with `encrypt` (a whole mail, a TOTP secret): declared so that
    `rotate` and the tests find every encrypted column."""

    impl = LargeBinary
    cache_ok = True


def lookup_hash(value: str) -> str:
    """A keyed hash of a trimmed, lowercased value (an address), kept beside its encrypted column so
    that an equality lookup needs no decryption. Keyed from SECRET_KEY: it reveals nothing without it."""
    key = hashlib.sha256(b"lookup-hash\0" + settings().secret_key.encode("utf-8")).digest()
    return hmac.new(key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class Rotated:
    """One batch of `rotate` in one table."""

    table: str
    values: int = 0  # re-encrypted under the newest key
    unreadable: int = 0  # no configured key decrypts them: left as they were


def encrypted_columns(table: Table) -> list:
    """The table's columns that hold Fernet tokens."""
    return [column for column in table.columns if isinstance(column.type, (Encrypted, FernetToken))]


def rotate(batch_size: int = 500) -> Iterator[Rotated]:
    """Re-encrypt every encrypted column under the newest key, yielding after each batch of rows so the
    caller commits it while the app keeps running. A value changed meanwhile is left alone (it was
    written under the newest key)."""
    for table in db.metadata.sorted_tables:
        if encrypted_columns(table):
            yield from _rotate_table(table, encrypted_columns(table), batch_size)


def _rotate_table(table: Table, columns: list, batch_size: int) -> Iterator[Rotated]:
    from cryptography.fernet import InvalidToken

    (key,) = table.primary_key.columns
    raw = [type_coerce(column, LargeBinary) for column in columns]
    query = select(key, *raw).order_by(key).limit(batch_size)
    rows = db.session.execute(query).all()
    while rows:
        batch = Rotated(table.name)
        for row in rows:
            for column, stored in zip(columns, row[1:]):
                if stored is None:
                    continue
                try:
                    fresh = _fernet().rotate(bytes(stored))
                except InvalidToken:
                    batch.unreadable += 1
                    continue
                db.session.execute(update(table).where(key == row[0], type_coerce(column, LargeBinary) == stored)
                                   .values({column: literal(fresh, LargeBinary)}))
                batch.values += 1
        yield batch
        rows = db.session.execute(query.where(key > rows[-1][0])).all()
