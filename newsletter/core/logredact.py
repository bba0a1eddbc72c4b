"""Keep reader tokens out of access logs: a confirm or unsubscribe link is a key to someone's subscription.

Used by gunicorn's access log (gunicorn.conf.py) and the development server's log (create_app).
"""
from __future__ import annotations

import logging
import re

# Every path that carries a token in its last segments; the token is whatever follows, up to the
# next slash, query, space or quote.
TOKEN_PATH = re.compile(r"(/(?:confirm|unsubscribe)/)[^/?#\s\"']+", re.IGNORECASE)
REDACTED = "[token]"


def redact(text: str) -> str:
    """`text` with every confirm/unsubscribe token replaced by [token]."""
    return TOKEN_PATH.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """A logging filter that redacts tokens from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(value) if isinstance(value, str) else value
                           for key, value in record.args.items()}
        return True
