"""Readers in and out as CSV: the import (a consent basis stated for every file) and the export."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Iterator

from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.mail import addresses
from newsletter.mail.suppression import is_suppressed, suppress
from newsletter.models import (
    Subscriber,
    utcnow,
)
from newsletter.models.readers import ACTIVE, PENDING, UNSUBSCRIBED
from newsletter.readers import moving_in, subscriptions

IMPORT_ASK = "ask"
IMPORT_ELSEWHERE = "elsewhere"

IMPORT_WORDING = {
    IMPORT_ASK: "Imported by the practice; each reader is asked to confirm by email before receiving anything.",
    IMPORT_ELSEWHERE: "Imported by the practice, who declared that these readers already consented elsewhere.",
}
SERVICE_WORDING = " From a {service} export."
ROSTER_CONFIRMATION = "This is not my client list"


class InvalidImport(ValueError):
    """The CSV file cannot be imported at all (wrong header, not text)."""


class RosterSuspected(InvalidImport):
    """The file looks like the practice's client list: refused until she says it is not one."""


@dataclass
class ImportResult:
    """What an import did, line by line where something was skipped."""

    added: int = 0
    existing: int = 0
    suppressed: int = 0
    left: int = 0  # readers who had unsubscribed on the old service: kept as unsubscribed, never mailed
    with_history: int = 0  # new readers whose opt-in time or IP came with the file
    service: str = ""
    dropped: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    mail_ids: list[int] = field(default_factory=list)


def _roster_refusal(where: moving_in.Layout, filename: str) -> str | None:
    """Why the file looks like a client list, or None."""
    reasons = []
    if where.roster_columns:
        reasons.append("it has columns a client record has (" + ", ".join(where.roster_columns[:6]) + ")")
    if moving_in.roster_like_name(filename):
        reasons.append("its name sounds like a client list")
    if not reasons:
        return None
    return ("This file looks like a list of your clients: " + " and ".join(reasons) + ". Clients are not "
            "added to the newsletter from your client records, and nothing about being a client is ever "
            "stored here. If it is a list of newsletter readers, confirm that it is not your client list "
            "and upload it again: only the email, name, status and consent columns are read"
            + (", these are dropped: " + ", ".join(where.dropped[:20]) if where.dropped else "") + ".")


def _header(reader) -> moving_in.Layout:
    where = moving_in.layout(next(reader, []))
    if "email" not in where.columns:
        raise InvalidImport("No column of email addresses: the first line must name the columns, such as "
                            "email,name, or be the first line of an export from Mailchimp, Substack, "
                            "Buttondown, Kit or listmonk.")
    return where


def import_csv(stream: IO[str], mode: str, origin: subscriptions.Origin, max_rows: int | None = None,
               filename: str = "", not_a_client_list: bool = False) -> ImportResult:
    """Add the readers of a CSV file (`email,name`, or another service's export); existing readers stay as they are.

    mode IMPORT_ASK: each new reader is pending and asked to confirm; IMPORT_ELSEWHERE: active at once,
    on the practice's word, which the consent record keeps. The export's opt-in and confirmation times
    and IPs become consent records; readers who left, bounced or complained there never come in active.
    A file that looks like a client list is refused unless `not_a_client_list`; a file with more than
    `max_rows` readers is refused whole. The caller commits.
    """
    if mode not in IMPORT_WORDING:
        raise InvalidImport("Please choose how these readers agreed to receive the newsletter.")
    reader = csv.reader(stream)
    where = _header(reader)
    refusal = _roster_refusal(where, filename)
    if refusal and not not_a_client_list:
        raise RosterSuspected(refusal)
    rows = list(reader)
    if max_rows is not None and len(rows) > max_rows:
        raise InvalidImport(f"This file has {len(rows):,} lines; the page imports up to {max_rows:,} at once. "
                            "Please split it, or use the command `flask subscribers import`.")
    result = ImportResult(service=where.service, dropped=where.dropped)
    wording = IMPORT_WORDING[mode] + (SERVICE_WORDING.format(service=where.service) if where.service else "")
    seen, now = set(), utcnow()
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            address = addresses.normalize(moving_in.cell(row, where, "email", raw=True))
            state = moving_in.status(row, where)
        except (addresses.InvalidAddress, moving_in.UnknownStatus) as exc:
            result.invalid.append((line, str(exc)))
            continue
        if address.lower() in seen:
            result.existing += 1
            continue
        seen.add(address.lower())
        _import_row(result, row, where, address, state, mode, origin, wording, now)
    return result


def _import_row(result: ImportResult, row: list[str], where: moving_in.Layout, address: str, state: str,
                mode: str, origin: subscriptions.Origin, wording: str, now: datetime) -> None:
    """One reader of the file: suppressed, kept as unsubscribed, or added pending or active."""
    if state in (moving_in.BOUNCED, moving_in.COMPLAINED):
        # The old service stopped mail to them: never mail them here either, known reader or not.
        suppress(address, "bounced" if state == moving_in.BOUNCED else "complained",
                 f"import: {where.service or 'CSV'} export")
        result.suppressed += 1
        return
    if subscriptions.find(address) is not None:
        result.existing += 1
        return
    if is_suppressed(address):
        result.suppressed += 1
        return
    asked = mode == IMPORT_ASK or state == moving_in.UNCONFIRMED
    status = UNSUBSCRIBED if state == moving_in.LEFT else PENDING if asked else ACTIVE
    subscriber = subscriptions.new_reader(address, subscriptions.clean_name(moving_in.full_name(row, where)),
                                          status, "import", now)
    result.with_history += _history(subscriber, row, where)
    subscriptions.record(subscriber, "import", origin, wording)
    if status == UNSUBSCRIBED:
        subscriber.unsubscribed_at = moving_in.when(moving_in.cell(row, where, "unsub_time")) or now
        subscriptions.record(subscriber, "unsubscribe", _from_export(""),
                             f"Unsubscribed on {where.service or 'the previous service'} (from its export).",
                             at=subscriber.unsubscribed_at)
        result.left += 1
        return
    result.added += 1
    if status == PENDING:
        result.mail_ids.append(subscriptions.queue_confirmation(subscriber, now))


def _from_export(ip: str) -> subscriptions.Origin:
    return subscriptions.Origin(source="import", ip=ip, user_agent="from the export file")


def _history(subscriber: Subscriber, row: list[str], where: moving_in.Layout) -> int:
    """The export's opt-in and confirmation (time and IP) as consent records; 1 if it had any."""
    service = where.service or "the previous service"
    found = 0
    for action, time_column, ip_column, words in (
            ("subscribe", "optin_time", "optin_ip", f"Subscribed on {service} (time and IP from its export)."),
            ("confirm", "confirm_time", "confirm_ip", f"Confirmed on {service} (time and IP from its export).")):
        at = moving_in.when(moving_in.cell(row, where, time_column))
        ip = moving_in.ip(moving_in.cell(row, where, ip_column))
        if at or ip:
            subscriptions.record(subscriber, action, _from_export(ip), words, at=at)
            found = 1
    return found


EXPORT_COLUMNS = ("email", "name", "status", "source", "created_at", "confirmed_at", "unsubscribed_at")


def _csv_cell(value: object) -> str:
    text = "" if value is None else (value.isoformat(sep=" ", timespec="seconds")
                                     if isinstance(value, datetime) else str(value))
    # A spreadsheet would run a cell starting like a formula: keep it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv() -> Iterator[str]:
    """Every reader as CSV lines (header first), streamed in id order; times in UTC."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    rows = db.session.execute(
        select(*(getattr(Subscriber, column) for column in EXPORT_COLUMNS))
        .order_by(Subscriber.id)
        .execution_options(yield_per=1000)
    )
    for number, row in enumerate(rows):
        writer.writerow([_csv_cell(value) for value in row])
        if number % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
