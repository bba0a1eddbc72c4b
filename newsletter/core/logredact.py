"""Keep link tokens out of every log: a token in a URL is a key (to a subscription, a booking, a waitlist place).

The patterns come from the token routes (newsletter.web.token_route adds each rule here when the app is built),
so a new token route is redacted without anyone editing this file. Used by gunicorn's access log
(gunicorn.conf.py) and, through a log record factory, by every log line the app process writes (gunicorn's
error log in a worker, the development server's access log, the app's and the libraries' loggers).
"""
from __future__ import annotations

import logging
import re

REDACTED = "[token]"
# URL rule arguments whose value is a token: <token>, <confirm_token>, <string:token>...
TOKEN_ARGUMENT = re.compile(r"token", re.IGNORECASE)
# Query parameters that carry a token (a test copy's "View in browser" link: /issues/<slug>?preview=...).
QUERY_TOKENS = ("preview",)
_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_VALUE = r"[^/?#&\s\"']+"
_rules: dict[str, str] = {}  # rule -> its regular expression (token arguments as named groups)
_combined: re.Pattern | None = None
_QUERY_TOKEN = re.compile(rf"([?&](?:{'|'.join(QUERY_TOKENS)})=){_VALUE}", re.IGNORECASE)


def is_token_argument(name: str) -> bool:
    """True for a URL rule argument that carries a token."""
    return bool(TOKEN_ARGUMENT.search(name))


def token_arguments(rule: str) -> list[str]:
    """The token arguments of a URL rule like "/consultation/<token>"."""
    return [name for name in _ARGUMENT.findall(rule) if is_token_argument(name)]


def add_rule(rule: str) -> None:
    """Redact the token arguments of this URL rule from every log line from now on."""
    if rule in _rules:
        return
    global _combined
    pattern, last = [], 0
    for found in _ARGUMENT.finditer(rule):
        pattern.append(re.escape(rule[last:found.start()]))
        name = found.group(1)
        pattern.append(f"(?P<t{len(_rules)}_{len(pattern)}>{_VALUE})" if is_token_argument(name) else _VALUE)
        last = found.end()
    pattern.append(re.escape(rule[last:]))
    _rules[rule] = "".join(pattern)
    # One alternation, longest rule first: /preferences/address/<token> is tried before /preferences/<token>,
    # and a matched URL is consumed, so no shorter rule takes a fixed segment for a token.
    ordered = sorted(_rules.values(), key=len, reverse=True)
    _combined = re.compile("|".join(f"(?:{expression})" for expression in ordered), re.IGNORECASE)


def rules() -> list[str]:
    """The URL rules whose tokens are redacted."""
    return list(_rules)


def _blank_tokens(match: re.Match) -> str:
    text, offset = match.group(0), match.start()
    spans = sorted((match.span(name) for name, value in match.groupdict().items() if value is not None), reverse=True)
    for start, end in spans:
        text = text[:start - offset] + REDACTED + text[end - offset:]
    return text


def redact(text: str) -> str:
    """`text` with every token of a registered URL (and of a token query parameter) replaced by [token]."""
    if _combined is not None:
        text = _combined.sub(_blank_tokens, text)
    return _QUERY_TOKEN.sub(rf"\g<1>{REDACTED}", text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with tokens redacted from its message and its arguments."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {key: redact(value) if isinstance(value, str) else value for key, value in record.args.items()}
    return record


def redact_every_record() -> None:
    """Redact tokens from every log record this process makes, whichever logger and handler it goes to."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts_tokens", False):
        return

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        return redact_record(make_record(*args, **kwargs))

    redacting_factory.redacts_tokens = True
    logging.setLogRecordFactory(redacting_factory)
