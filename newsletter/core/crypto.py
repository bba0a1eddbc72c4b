"""Encryption at rest for what prospective clients write (Fernet, INQUIRY_ENCRYPTION_KEY).

cryptography is imported on first use: its library costs a process 9 MB, and a worker that only sends
issues never encrypts or decrypts anything.
"""
from __future__ import annotations

from flask import current_app


def _fernet():
    from cryptography.fernet import Fernet, MultiFernet

    # Several comma-separated keys allow rotation: the first encrypts, all decrypt.
    keys = [k.strip() for k in current_app.config["INQUIRY_ENCRYPTION_KEY"].split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _fernet().encrypt(data)


def decrypt(token: bytes) -> bytes:
    return _fernet().decrypt(bytes(token))


def decrypt_text(token: bytes | None) -> str:
    return decrypt(token).decode("utf-8") if token else ""
