"""THE address rule, one for the whole product: every address a person types (signup, contact form,
CSV import, create-admin, sign-in, a test copy, the practice's contact address) goes through `normalize`.

An address passes when
- it is a plain address (no display name, no quoted local part, no [IP] domain), ASCII before the @
  (most mail servers on the way cannot carry more), its domain kept in its ASCII (IDNA) form;
- it holds no control character and no line or paragraph separator, anywhere (spaces and tabs around it
  are trimmed, as a browser trims a typed address);
- it holds no encoded word (`=?`), and `email.header.decode_header`, `make_header` and
  `email.utils.parseaddr` read it back unchanged: a mail program's legacy decoder must never turn it
  into more header lines or more recipients;
- it is at most 254 characters long.
No DNS is asked (a signup's answer must not depend on a lookup; an address that cannot receive mail
bounces, and the bounce path suppresses it). So the reserved test names (`.test`, `.example`, RFC 2606)
are accepted always, in every setting: refusing them would protect nothing that an unknown top-level
domain does not already get through, and development, test and production keep the very same rule.
Other special-use names (`.localhost`, `.local`, `.invalid`, `.onion`, `.arpa`) are refused.
"""
from __future__ import annotations

import unicodedata
from email.header import decode_header, make_header
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email
from wtforms.validators import ValidationError

MAX_LENGTH = 254  # RFC 5321's limit for a forward path, less its angle brackets

MISSING = "Please enter your email address."
TOO_LONG = "That email address is too long."
NOT_AN_ADDRESS = "Please enter a valid email address, like name@example.com."


class InvalidAddress(ValueError):
    """The address is refused; the message says why, in plain words a visitor understands."""


def normalize(raw: str | None) -> str:
    """The address in the one form the product stores and writes into headers, or InvalidAddress."""
    address = (raw or "").strip(" \t")
    if not address:
        raise InvalidAddress(MISSING)
    if len(address) > MAX_LENGTH:
        raise InvalidAddress(TOO_LONG)
    if "=?" in address or any(_is_control(character) for character in address):
        raise InvalidAddress(NOT_AN_ADDRESS)
    try:
        result = validate_email(address, check_deliverability=False, test_environment=True, allow_smtputf8=False,
                                allow_quoted_local=False, allow_domain_literal=False, allow_display_name=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(NOT_AN_ADDRESS) from exc
    local, _, domain = result.ascii_email.rpartition("@")
    normalized = f"{local}@{domain.lower()}"
    if not _reads_back_unchanged(normalized):
        raise InvalidAddress(NOT_AN_ADDRESS)
    return normalized


def _is_control(character: str) -> bool:
    """Controls (CR, LF, NUL, DEL...), invisible formatting, unassigned, line separators, any space but " "."""
    return character != " " and unicodedata.category(character)[0] in "CZ"


def _reads_back_unchanged(address: str) -> bool:
    """What a mail program's header decoders and address parser make of it is the address itself."""
    try:
        decoded = str(make_header(decode_header(address)))
    except (UnicodeError, LookupError, ValueError):
        return False
    return decoded == address and parseaddr(address) == ("", address)


class Address:
    """The WTForms validator of every address field: `normalize`'s rule and its message; a valid field
    then holds the normalized address. Required by default (the field renders `required`);
    `Address(required=False)` lets an empty field through."""

    def __init__(self, required: bool = True) -> None:
        self.required = required
        self.field_flags = {"required": True} if required else {}

    def __call__(self, form, field) -> None:
        if not self.required and not (field.data or "").strip():
            return
        try:
            field.data = normalize(field.data)
        except InvalidAddress as exc:
            raise ValidationError(str(exc)) from exc
