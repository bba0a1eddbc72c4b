"""Reading another newsletter service's export: which service wrote it, which column is which, what
each row's status means, and the guard against importing the practice's client list.

Pure functions on the header and the cells: nothing here touches the database (csv_files.import_csv does).
Column names as each service documents its export:
Mailchimp "Email Address", "First Name", "Last Name", OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP,
UNSUB_TIME (the unsubscribed export), CLEAN_TIME (the cleaned export); Substack email, created_at,
active_subscription, email_disabled; Buttondown email (or email_address), creation_date, subscriber_type,
ip_address; Kit email (or email_address), first_name, created_at, status (or state); listmonk email, name,
attributes, status (enabled, disabled, blocklisted), created_at.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

# What a row asks for, whatever words its service uses.
SUBSCRIBED, UNCONFIRMED, LEFT, BOUNCED, COMPLAINED = "subscribed", "unconfirmed", "left", "bounced", "complained"

# Each field we read, and every header a service writes for it (compared lowercased, with _ and - as spaces).
COLUMNS = {
    "email": ("email", "email address", "e mail", "email addr"),
    "name": ("name", "full name"),
    "first_name": ("first name", "fname", "firstname", "given name"),
    "last_name": ("last name", "lname", "lastname", "family name", "surname"),
    "optin_time": ("optin time", "created at", "creation date", "subscribed at", "subscription created at",
                   "date subscribed", "signup date"),
    "optin_ip": ("optin ip", "ip address", "signup ip", "ip"),
    "confirm_time": ("confirm time", "confirmed at"),
    "confirm_ip": ("confirm ip",),
    "unsub_time": ("unsub time", "unsubscribed at"),
    "clean_time": ("clean time",),
    "status": ("status", "state", "subscriber type", "type"),
    "active_subscription": ("active subscription",),
    "email_disabled": ("email disabled",),
}

# A service is recognised by a column only its export has.
SERVICES = (
    ("Mailchimp", ("optin time", "member rating", "leid", "euid", "confirm time", "clean time", "unsub time")),
    ("Substack", ("active subscription", "email disabled")),
    ("Buttondown", ("subscriber type", "creation date")),
    ("listmonk", ("attributes", "uuid")),
    ("Kit", ("state",)),
)

# The words each service uses for a reader's state, and what they mean here.
STATUS_WORDS = {
    SUBSCRIBED: {"", "active", "subscribed", "enabled", "confirmed", "regular", "premium", "gifted", "trialed",
                 "churning", "past due", "paused", "cold", "free", "paid", "comp"},
    UNCONFIRMED: {"unconfirmed", "unactivated", "pending", "inactive unconfirmed"},
    LEFT: {"unsubscribed", "cancelled", "canceled", "inactive", "disabled", "blocklisted", "blacklisted",
           "removed", "left", "archived"},
    BOUNCED: {"cleaned", "bounced", "undeliverable", "hard bounce"},
    COMPLAINED: {"complained", "spammy", "spam", "complaint"},
}
TRUE_WORDS = {"true", "yes", "1", "t", "y"}
FALSE_WORDS = {"false", "no", "0", "f", "n"}

# Columns that only a clinical record has, and file names a client roster gets (matched as word parts).
ROSTER_COLUMN_HINTS = ("birth", "dob", "diagnos", "insur", "appointment", "session", "patient", "client",
                       "medicat", "icd", "dsm", "treatment", "copay", "medicaid", "medicare", "intake",
                       "caseload", "clinical")
ROSTER_NAME_HINTS = ("client", "roster", "patient", "caseload", "appointment", "session", "intake",
                     "simplepractice", "therapynotes", "theranest", "ehr")


class UnknownStatus(ValueError):
    """A row's status word means nothing we know: the row is skipped, never guessed active."""


def _key(header: str) -> str:
    cleaned = re.sub(r"[_\-\s.]+", " ", header.strip().lstrip("\ufeff").lower())
    return cleaned.strip()


@dataclass
class Layout:
    """Which column holds what, in one file; and the columns left out."""

    service: str
    columns: dict[str, int]
    dropped: list[str] = field(default_factory=list)
    roster_columns: list[str] = field(default_factory=list)


def layout(header: list[str]) -> Layout:
    """Recognise the file's columns; the email column may be anywhere. Unknown columns are dropped."""
    keys = [_key(cell) for cell in header]
    columns: dict[str, int] = {}
    for index, key in enumerate(keys):
        for name, aliases in COLUMNS.items():
            if key in aliases and name not in columns:
                columns[name] = index
                break
    dropped = [header[i].strip()[:60] for i, key in enumerate(keys) if key and i not in columns.values()]
    roster = [header[i].strip()[:60] for i, key in enumerate(keys)
              if any(hint in key.replace(" ", "") for hint in ROSTER_COLUMN_HINTS)]
    service = next((name for name, marks in SERVICES if any(mark in keys for mark in marks)), "")
    if not service and "status" in keys and "first name" in keys and "created at" in keys:
        service = "Kit"  # Kit's export: email, first_name, created_at, status
    return Layout(service=service, columns=columns, dropped=dropped, roster_columns=roster)


def roster_like_name(filename: str) -> bool:
    """True when the file's name says client list (clients.csv, Roster 2024.csv, patients-export.csv)."""
    stem = re.sub(r"[^a-z]", "", (filename or "").lower().rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    return any(hint in stem for hint in ROSTER_NAME_HINTS)


def cell(row: list[str], where: Layout, name: str, raw: bool = False) -> str:
    """The row's value for a field; `raw`: as written (an address goes to addresses.normalize untouched)."""
    index = where.columns.get(name)
    value = row[index] if index is not None and index < len(row) else ""
    return value if raw else value.strip()


def status(row: list[str], where: Layout) -> str:
    """What the row says about the reader: SUBSCRIBED, UNCONFIRMED, LEFT, BOUNCED or COMPLAINED."""
    if cell(row, where, "clean_time"):
        return BOUNCED
    if cell(row, where, "unsub_time"):
        return LEFT
    if cell(row, where, "email_disabled").lower() in TRUE_WORDS:
        return LEFT
    if cell(row, where, "active_subscription").lower() in FALSE_WORDS:
        return LEFT
    word = _key(cell(row, where, "status"))
    for meaning, words in STATUS_WORDS.items():
        if word in words:
            return meaning
    raise UnknownStatus(f"unknown status {word[:40]!r}: the row is left out")


def when(text: str) -> datetime | None:
    """A time from an export (ISO 8601, with or without a zone: UTC then) as naive UTC; None if not one."""
    text = text.strip()
    if not text or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text.replace(" UTC", "").replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment if datetime(1995, 1, 1) <= moment <= datetime.now(UTC).replace(tzinfo=None) else None


def ip(text: str) -> str:
    """The address as written when it is an IP address; else nothing."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return ""


def full_name(row: list[str], where: Layout) -> str:
    return cell(row, where, "name") or " ".join(
        part for part in (cell(row, where, "first_name"), cell(row, where, "last_name")) if part)
