"""Replies the practice forwards to be counted: a reader answered an issue, she forwards the reply (as an
attachment, inline, or the reply itself piped in by her mail server) and the issue's Reach row counts one
more. Nothing about the reader is kept: only which issue, when, and a fingerprint so the same reply
forwarded twice counts once.

The issue is found from the reply's In-Reply-To or References (the issue's Message-ID,
readers/personalize.issue_message_id), in the forwarded message or in one attached to it; an inline
forward carries no Message-ID, so then from its subject ("Fwd: Re: <the issue's title>").
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from newsletter.core.extensions import db
from newsletter.deliverability.bounces import issue_from_message_id
from newsletter.models import Issue, IssueReply
from newsletter.models.issues import PAUSED, SENDING, SENT

MAX_REPLY_BYTES = 10 * 1024 * 1024  # a reply with a photo or two; far beyond that is not a reply
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|tr|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.I)
_ANSWERED = ("In-Reply-To", "References")
_LONGEST_TITLE = 300


class NotAReply(ValueError):
    """The message answers no issue we sent, or cannot be read."""


@dataclass(frozen=True)
class Counted:
    issue: Issue
    new: bool  # False: this reply had been counted before


def count(raw: bytes) -> Counted:
    """Count the reply in `raw` (the caller commits); NotAReply says why it cannot be counted."""
    if len(raw) > MAX_REPLY_BYTES:
        raise NotAReply(f"it is larger than {MAX_REPLY_BYTES // 2**20} MB, far more than a reply")
    messages = _with_attached(BytesParser(policy=compat32).parsebytes(raw))
    found = _by_message_id(messages) or _by_subject(messages)
    if found is None:
        raise NotAReply("it answers no issue that went out (no issue's Message-ID in its In-Reply-To or "
                        "References, and no issue's title in its subject)")
    reply, issue = found
    own_id = str(reply.get("Message-ID") or "").strip()
    fingerprint = hashlib.sha256(own_id.encode() if own_id else raw).hexdigest()
    try:
        with db.session.begin_nested():
            db.session.add(IssueReply(issue_id=issue.id, fingerprint=fingerprint))
    except IntegrityError:
        return Counted(issue, new=False)
    return Counted(issue, new=True)


def counted_for(issue_id: int) -> int:
    """Replies counted for the issue."""
    return db.session.scalar(select(func.count()).where(IssueReply.issue_id == issue_id))


def _with_attached(message: Message) -> list[Message]:
    """The message, then each message attached to it (a forward as attachment), outermost first."""
    found = [message]
    for part in message.walk():
        if part.get_content_type() == "message/rfc822" and isinstance(part.get_payload(), list):
            found.extend(inner for inner in part.get_payload() if isinstance(inner, Message))
    return found


def _went_out(issue_id: int | None) -> Issue | None:
    issue = db.session.get(Issue, issue_id) if issue_id is not None else None
    return issue if issue is not None and issue.status in (SENDING, PAUSED, SENT) else None


def _by_message_id(messages: list[Message]) -> tuple[Message, Issue] | None:
    for message in messages:
        for header in _ANSWERED:
            for message_id in " ".join(str(value) for value in message.get_all(header, [])).split():
                issue = _went_out(issue_from_message_id(message_id))
                if issue is not None:
                    return message, issue
    return None


def _by_subject(messages: list[Message]) -> tuple[Message, Issue] | None:
    for message in messages:
        title = _PREFIX.sub("", _decoded(message.get("Subject"))).strip()
        if title and len(title) <= _LONGEST_TITLE and title.isprintable():  # NULs and the like name no title
            issue = db.session.scalar(select(Issue).where(func.lower(Issue.title) == title.lower(),
                                                          Issue.status.in_((SENDING, PAUSED, SENT)))
                                      .order_by(Issue.id.desc()).limit(1))
            if issue is not None:
                return message, issue
    return None


def _decoded(value: object) -> str:
    try:
        return " ".join(str(make_header(decode_header(str(value or "")))).split())
    except (ValueError, LookupError, UnicodeError):  # a malformed encoded word: compare the raw text
        return " ".join(str(value or "").split())
