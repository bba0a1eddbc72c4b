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
from newsletter.mail.suppression import is_suppressed
from newsletter.models import (
    Subscriber,
    utcnow,
)
from newsletter.models.readers import ACTIVE, PENDING
from newsletter.readers import subscriptions

IMPORT_ASK = "ask"


IMPORT_ELSEWHERE = "elsewhere"


IMPORT_WORDING = {
    IMPORT_ASK: "Imported by the practice; each reader is asked to confirm by email before receiving anything.",
    IMPORT_ELSEWHERE: "Imported by the practice, who declared that these readers already consented elsewhere.",
}


class InvalidImport(ValueError):
    """The CSV file cannot be imported at all (wrong header, not text)."""


@dataclass
class ImportResult:
    """What an import did, line by line where something was skipped."""

    added: int = 0
    existing: int = 0
    suppressed: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    mail_ids: list[int] = field(default_factory=list)


def import_csv(stream: IO[str], mode: str, origin: subscriptions.Origin, max_rows: int | None = None) -> ImportResult:
    """Add the readers of a CSV file with the header `email,name`; existing readers are left as they are.

    mode IMPORT_ASK: each new reader is pending and asked to confirm; IMPORT_ELSEWHERE: active at once,
    on the practice's word, which the consent record keeps. A file with more than `max_rows` readers is
    refused whole. The caller commits.
    """
    if mode not in IMPORT_WORDING:
        raise InvalidImport("Please choose how these readers agreed to receive the newsletter.")
    reader = csv.reader(stream)
    header = [cell.strip().lower().lstrip("\ufeff") for cell in next(reader, [])]
    if not header or header[0] != "email" or header[1:] not in ([], ["name"]):
        raise InvalidImport("The first line must be the header email,name.")
    rows = list(reader)
    if max_rows is not None and len(rows) > max_rows:
        raise InvalidImport(f"This file has {len(rows):,} lines; the page imports up to {max_rows:,} at once. "
                            "Please split it, or use the command `flask subscribers import`.")
    result, seen, now = ImportResult(), set(), utcnow()
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            address = addresses.normalize(row[0])
        except addresses.InvalidAddress as exc:
            result.invalid.append((line, str(exc)))
            continue
        if address.lower() in seen or subscriptions.find(address) is not None:
            result.existing += 1
            continue
        seen.add(address.lower())
        if is_suppressed(address):
            result.suppressed += 1
            continue
        status = PENDING if mode == IMPORT_ASK else ACTIVE
        subscriber = subscriptions.new_reader(address, subscriptions.clean_name(row[1] if len(row) > 1 else ""), status, "import", now)
        subscriptions.record(subscriber, "import", origin, IMPORT_WORDING[mode])
        result.added += 1
        if mode == IMPORT_ASK:
            result.mail_ids.append(subscriptions.queue_confirmation(subscriber, now))
    return result


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
