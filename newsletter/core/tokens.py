"""Signed tokens for links in mail. Each purpose has its own salt, so a confirm token is
never accepted as an unsubscribe token, and the reverse."""
from __future__ import annotations

import base64
import hmac
import json
import zlib
from datetime import datetime
from typing import Any, Callable

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from newsletter.core.config import settings


class BadToken(Exception):
    """Forged, tampered, expired, revoked (what it was for is done) or meant for another purpose."""

    def __init__(self, expired: bool = False, revoked: bool = False):
        super().__init__("expired" if expired else "revoked" if revoked else "invalid")
        self.expired = expired
        self.revoked = revoked


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt=f"newsletter.{purpose}")


def _permanent_serializer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(settings().secret_key, salt=f"newsletter.{purpose}")


def make(purpose: str, payload: Any) -> str:
    """A token that carries its time of signing, for links that expire."""
    return _serializer(purpose).dumps(payload)


def make_permanent(purpose: str, payload: Any) -> str:
    """A token without a time: the same payload always gives the same link (unsubscribe links)."""
    return _permanent_serializer(purpose).dumps(payload)


def permanent_maker(*purposes: str) -> Callable[[Any], tuple[str, ...]]:
    """`make_permanent` for each purpose, for many payloads in a row (an issue's readers): the same tokens
    (a test compares them), with what itsdangerous redoes for each token done once: the serializers, the
    keys' derivation, the JSON encoder; a payload is encoded once for all the purposes (only the signatures
    differ), and each signature is one call into OpenSSL (hmac.digest)."""
    signers = [_permanent_serializer(purpose).make_signer() for purpose in purposes]
    keys = [signer.derive_key() for signer in signers]
    digest, sep = signers[0].digest_method().name, signers[0].sep
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # itsdangerous' compact JSON

    def make(payload: Any) -> tuple[str, ...]:
        value = encoder.encode(payload).encode("utf-8")
        compressed = zlib.compress(value)  # as URLSafeSerializer: compressed when that is shorter
        value = b"." + _base64(compressed) if len(compressed) < len(value) - 1 else _base64(value)
        return tuple((value + sep + _base64(hmac.digest(key, value, digest))).decode("ascii") for key in keys)

    return make


def _base64(data: bytes) -> bytes:
    """itsdangerous' base64_encode, for bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def row_id(value: Any) -> int | None:
    """The id a token's payload names when it is a plain integer in the database's range (never True), else None."""
    return value if type(value) is int and 0 < value < 2**31 else None


def read(purpose: str, token: str, max_age: int | None = None) -> Any:
    """The payload of a valid token, else BadToken (with .expired when only the age is wrong).

    Without `max_age`, permanent tokens are read, and timed ones too (links mailed before
    unsubscribe links became permanent keep working)."""
    if max_age is None:
        try:
            return _permanent_serializer(purpose).loads(token)
        except BadData:
            pass
    return read_signed(purpose, token, max_age)[0]


def read_signed(purpose: str, token: str, max_age: int | None) -> tuple[Any, datetime]:
    """The payload of a valid timed token and when it was signed (naive UTC, to the second), else BadToken."""
    try:
        payload, signed_at = _serializer(purpose).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired as exc:
        raise BadToken(expired=True) from exc
    except BadData as exc:
        raise BadToken() from exc
    return payload, signed_at.replace(tzinfo=None)
