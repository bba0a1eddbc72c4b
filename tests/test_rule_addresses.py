"""One address rule (newsletter/mail/addresses.py) wherever a person types an address.

Every form field and CLI option that takes an address is found by looking (the form classes, the
commands' parameters): an EmailField, or a typed field named with an address word ("email" or "address"
anywhere, or a word like "to", "cc", "recipient"), so one added later without a place in FORM_PLACES or
CLI_PLACES fails here; a field named so that takes none is listed in NOT_ADDRESSES with why.
Each place is fed the same hostile addresses, listed and hypothesis-generated: refused with the
rule's message, nothing stored, never a 500. A `.test` address is accepted by every one of them.
"""
from __future__ import annotations

import csv
import importlib
import pkgutil
import re
import unicodedata
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses, parseaddr
from pathlib import Path

import click
import pytest
from flask_wtf import FlaskForm
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from wtforms import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    FileField,
    FloatField,
    IntegerField,
    SubmitField,
    TimeField,
)
from wtforms.fields.choices import SelectFieldBase

import newsletter
from newsletter.accounts import practice, users
from newsletter.core.extensions import db
from newsletter.mail import addresses
from newsletter.mail.suppression import is_suppressed
from newsletter.models import AdminUser, Inquiry, OutgoingMail, Subscriber
from newsletter.readers import personalize
from tests.helpers import EMAILS, HOSTILE, LOCAL_PART, add_issue, add_reader
from tests.routes import BACKGROUND_RECORDS
from tests.support import apply_stored_forms

VALID = "dana.reyes@innercalm.test"  # also the admin's address: signing in with it is its acceptance
PASSWORD = "a long and careful passphrase"
MESSAGES = {addresses.MISSING, addresses.TOO_LONG, addresses.NOT_AN_ADDRESS}

# What a legacy decoder turns into "\r\nBcc: victim@evil.test", what splits into two recipients, what ends
# a header line, what a database refuses, what no mail server takes.
HOSTILE_ADDRESSES = [
    "a=?utf-8?b?DQpCY2M6IHZpY3RpbUBldmlsLnRlc3Q=?=@example.com",
    "=?utf-8?q?dana=0D=0ABcc=3A_victim=40evil=2Etest?=@example.com",
    "dana=?@example.com",
    "dana@example.com\r\nBcc: victim@evil.test",
    "dana@example.com\nBcc: victim@evil.test",
    "dana@example.com\rBcc: victim@evil.test",
    "dana@example.com\u2028Bcc: victim@evil.test",
    "dana@example.com\u2029",
    "dana\u0085@example.com",
    "dana\x00@example.com",
    "dana\x00@example.com\x00\r\nBcc: victim@evil.test",
    "dana@example.com\x7f",
    "dana\u200b@example.com",
    "dana\ufeff@example.com",
    '"dana,victim@evil.test"@example.com',
    '"victim@evil.test, dana"@example.com',
    "dana@example.com, victim@evil.test",
    "dana@example.com;victim@evil.test",
    "Dana <dana@example.com>",
    "<victim@evil.test>dana@example.com",
    "dana@[127.0.0.1]",
    "dana@localhost",
    "dänä@example.com",
    "d" * 250 + "@example.com",
    "dana@" + "a" * 300 + ".example",
    ".".join(["x" * 63] * 4) + "@example.com",
]


def _refused(value: str) -> bool:
    try:
        addresses.normalize(value)
    except addresses.InvalidAddress:
        return True
    return False


def _with_fragment(local: str, fragment: str, where: int) -> str:
    return [f"{fragment}{local}@innercalm.test", f"{local}{fragment}@innercalm.test",
            f"{local}@inner{fragment}calm.test", f"{local}@innercalm.test{fragment}"][where]


CONTROLS = st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"], exclude_characters=" \t")
FRAGMENTS = st.one_of(HOSTILE, st.text(CONTROLS, min_size=1, max_size=3),
                      st.sampled_from(["=?", "?=", "=?utf-8?b?DQo=?=", '","', ",", "\r\nBcc: victim@evil.test"]))
GENERATED_HOSTILE = st.builds(_with_fragment, LOCAL_PART, FRAGMENTS, st.integers(0, 3)).filter(_refused)


def message_for(value: str) -> str:
    with pytest.raises(addresses.InvalidAddress) as refused:
        addresses.normalize(value)
    return str(refused.value)


# -- the places, found by looking

def _every_form_class() -> set[type]:
    for module in pkgutil.walk_packages(newsletter.__path__, "newsletter."):
        importlib.import_module(module.name)

    def below(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct} | below(direct)}

    return {form for form in below(FlaskForm) if form.__module__.startswith("newsletter.")}


# A name takes an address when one of its words is one of these ("to", "reply_to", "new_email", "cc_addresses"),
# or when it holds "email" or "address" anywhere ("emailaddress", "email_address", "partneremail").
ADDRESS_WORDS = {"email", "emails", "mail", "address", "addresses", "to", "cc", "bcc", "recipient", "recipients",
                 "sender"}  # not "from": heard_from
# Fields whose value is picked from what the page offers (or a file: see import_csv), never typed in.
NOT_TYPED = (BooleanField, SelectFieldBase, IntegerField, DecimalField, FloatField, DateField, DateTimeField, TimeField,
             FileField, SubmitField)
# Fields and options named like an address that take none, each with why.
NOT_ADDRESSES = {
    ("PracticeProfileForm", "postal_address"): "the practice's street address, printed in mail footers, never mailed to",
}


def _takes_an_address(name: str) -> bool:
    words = set(re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()))
    return bool(words & ADDRESS_WORDS) or any(part in name.lower() for part in ("email", "address"))


def address_fields() -> dict[tuple[str, str], list]:
    """Every (form class, field) whose name or type says it takes a typed address, with the field's validators."""
    found = {}
    for form in _every_form_class():
        for name in dir(form):
            field_class = getattr(getattr(form, name), "field_class", None)
            if field_class is None or (form.__name__, name) in NOT_ADDRESSES:
                continue
            if issubclass(field_class, EmailField) or _takes_an_address(name) and not issubclass(field_class, NOT_TYPED):
                found[(form.__name__, name)] = getattr(form, name).kwargs.get("validators", [])
    return found


def address_options(app) -> set[tuple[str, str]]:
    """Every (command, parameter) of the project's `flask` commands that takes an address."""
    found = set()

    def walk(command: click.Command, path: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())
        found.update((path, param.name) for param in command.params if _takes_an_address(param.name))

    walk(app.cli, "")
    return found


@dataclass
class Form:
    """A page with an address field: where it posts, with which other fields, as admin or visitor."""

    path: str
    name: str = "email"
    other: dict = field(default_factory=dict)
    admin: bool = False


CONTACT = {"name": "Dana Reyes", "preferred_contact": "email", "message": "We would like to talk."}
PROFILE = {"practice_name": "Inner Calm Counseling", "therapist_name": "Shoshana Ort, LCSW",
           "signature": "Shoshana Ort, LCSW", "postal_address": "5 Calm Street, Greenwood Village, CO 80111"}
FORM_PLACES = {
    ("SubscribeForm", "email"): [Form("/subscribe"), Form("/embed/subscribe")],
    ("ContactForm", "email"): [Form("/contact", other=CONTACT), Form("/embed/contact", other=CONTACT)],
    ("LoginForm", "email"): [Form("/admin/login", other={"password": PASSWORD})],
    ("TestSendForm", "to"): [Form("/admin/issues/{issue}/test", name="to", admin=True)],
    ("PracticeProfileForm", "email"): [Form("/admin/practice", other=PROFILE, admin=True)],
    ("PersonInviteForm", "email"): [Form("/admin/people/invite", other={"role": "clinician", "confirmed": "yes"},
                                         admin=True)],
    ("PreferencesForm", "new_email"): [Form("/preferences/{preferences}", name="new_email",
                                            other={"action": "address"})],
}
CLI_PLACES = {
    ("create-admin", "email"): lambda value, issue: ["create-admin", value],
    ("subscribers suppress", "email"): lambda value, issue: ["subscribers", "suppress", value, "--reason", "bounced"],
    ("issue test", "to"): lambda value, issue: ["issue", "test", str(issue), "--to", value],
}


class Places:
    """Sends an address to each place and tells what it answered."""

    def __init__(self, app, monkeypatch, folder: Path) -> None:
        monkeypatch.setenv("ADMIN_PASSWORD", PASSWORD)
        self.app, self.visitor, self.admin, self.folder = app, app.test_client(), app.test_client(), folder
        self.runner = app.test_cli_runner()
        with app.app_context():
            users.set_admin(VALID, PASSWORD)
            db.session.commit()
            self.issue = add_issue("draft").id
            self.preferences = personalize.preferences_url(add_reader("reader@example.org")).rsplit("/", 1)[1]
        assert self.admin.post("/admin/login", data={"email": VALID, "password": PASSWORD}).status_code == 302

    def post(self, form: Form, value: str) -> tuple[int, str]:
        client = self.admin if form.admin else self.visitor
        response = client.post(form.path.format(issue=self.issue, preferences=self.preferences), data={**form.other, form.name: value})
        return response.status_code, response.get_data(as_text=True)

    def run(self, key: tuple[str, str], value: str) -> tuple[int, str]:
        result = self.runner.invoke(args=CLI_PLACES[key](value, self.issue))
        return result.exit_code, result.output

    def import_csv(self, value: str) -> tuple[int, str]:
        """`flask subscribers import` (the admin's upload runs the same import_csv) of a one-reader file."""
        path = self.folder / "readers.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows([["email", "name"], [value, "Dana"]])
        result = self.runner.invoke(args=["subscribers", "import", str(path)])
        return result.exit_code, result.output

    def stored(self) -> tuple:
        """Rows in every table, and the practice's contact address (an update, not a row). The audit log
        is left out: it records each import, even one that added nobody (without any address); so are the
        heartbeats the session's worker writes on its own clock."""
        with self.app.app_context():
            db.session.remove()
            counts = tuple(db.session.scalar(select(func.count()).select_from(table))
                           for table in db.metadata.sorted_tables
                           if table.name != "audit_log" and table.name not in BACKGROUND_RECORDS)
            return counts, practice.profile().email


@pytest.fixture
def places(app, monkeypatch, tmp_path) -> Places:
    return Places(app, monkeypatch, tmp_path)


def assert_refused_everywhere(places: Places, value: str) -> None:
    message = message_for(value)
    before = places.stored()
    posted = value.replace("\x00", "")  # the web drops NULs from every form value first (web.FormRequest)
    for key, forms in FORM_PLACES.items() if _refused(posted) else ():
        for form in forms:
            status, page = places.post(form, posted)
            assert status == 400 and message_for(posted) in page, (key, form.path, value, status)
    for key in CLI_PLACES:
        exit_code, output = places.run(key, value)
        assert exit_code == 1 and f"Error: {message}" in output and "Traceback" not in output, (key, value, output)
    exit_code, output = places.import_csv(value)
    assert exit_code == 0 and f"line 2: {message}" in output and "0 added" in output, (value, output)
    assert places.stored() == before, value


# -- every place is known and carries the rule

def test_every_address_field_of_every_form_has_a_place_here_and_the_one_rule(app):
    fields = address_fields()

    assert set(fields) == set(FORM_PLACES), "an address field without a place in FORM_PLACES (or a place gone)"
    for key, validators in fields.items():
        assert [type(v) for v in validators] == [addresses.Address], f"{key} must use addresses.Address alone"


def test_every_field_listed_as_no_address_exists_and_is_named_like_one(app):
    fields = {(form.__name__, name) for form in _every_form_class() for name in dir(form)
              if getattr(getattr(form, name), "field_class", None) is not None}
    for key in NOT_ADDRESSES:
        assert key in fields and _takes_an_address(key[1]), f"{key}: no such field, or not named like an address"


@pytest.mark.parametrize("name", ["email", "new_email", "email_address", "emailAddress", "partneremail", "to",
                                  "reply_to", "cc", "bcc_addresses", "recipient", "address", "sender"])
def test_a_name_that_says_address_is_found(name):
    assert _takes_an_address(name)


def test_every_address_option_of_every_command_has_a_place_here(app):
    assert address_options(app) == set(CLI_PLACES), "an address option without a place in CLI_PLACES (or one gone)"


# -- hostile addresses

@pytest.mark.parametrize("value", HOSTILE_ADDRESSES, ids=range(len(HOSTILE_ADDRESSES)))
def test_a_hostile_address_is_refused_everywhere_with_the_rules_message_and_nothing_stored(places, value):
    assert_refused_everywhere(places, value)


@given(value=GENERATED_HOSTILE)
def test_generated_hostile_addresses_are_refused_everywhere_and_nothing_stored(places, value):
    assert_refused_everywhere(places, value)


def test_an_encoded_word_that_decodes_into_a_bcc_header_is_refused(places):
    """The finding: accepted, written into To and Reply-To, and a legacy decoder made it CR LF + Bcc."""
    value = HOSTILE_ADDRESSES[0]
    assert "\r\nBcc: victim@evil.test" in str(make_header(decode_header(value)))
    status, page = places.post(FORM_PLACES[("ContactForm", "email")][0], value)
    assert status == 400 and addresses.NOT_AN_ADDRESS in page


# -- a .test address everywhere

def test_a_test_address_is_accepted_everywhere(places):
    app, valid = places.app, VALID.upper().replace("INNERCALM", "InnerCalm")  # the domain's case is normalized away
    stored = VALID.upper().replace("@INNERCALM.TEST", "@innercalm.test")

    for form in FORM_PLACES[("SubscribeForm", "email")] + FORM_PLACES[("ContactForm", "email")]:
        assert places.post(form, valid)[0] == 200, form.path
    apply_stored_forms(app)
    with app.app_context():
        assert db.session.scalar(select(Subscriber.email).where(Subscriber.email != "reader@example.org")) == stored
        assert db.session.scalar(select(Inquiry.email)) == stored
    assert places.post(FORM_PLACES[("LoginForm", "email")][0], VALID)[0] == 302
    assert places.post(FORM_PLACES[("TestSendForm", "to")][0], valid)[0] == 302
    assert places.post(FORM_PLACES[("PracticeProfileForm", "email")][0], VALID)[0] == 302
    for key in CLI_PLACES:
        exit_code, output = places.run(key, valid)
        assert exit_code == 0, (key, output)
    exit_code, output = places.import_csv(VALID.replace("dana", "robin"))
    assert exit_code == 0 and "1 added" in output, output

    with app.app_context():
        db.session.remove()
        assert practice.profile().email == VALID
        assert db.session.scalar(select(AdminUser.email)) == VALID  # create-admin reset the same admin
        assert is_suppressed(VALID)
        test_copies = db.session.scalars(select(OutgoingMail).where(OutgoingMail.kind == "issue_test"))
        assert {row.recipient for row in test_copies} == {stored}
        assert set(db.session.scalars(select(Subscriber.email))) == {stored, VALID.replace("dana", "robin"),
                                                                     "reader@example.org"}


# -- the rule itself, on any text

@given(value=st.one_of(st.text(max_size=300), EMAILS, GENERATED_HOSTILE,
                       st.builds(lambda local, text: f"{local}@{text}", LOCAL_PART, st.text(max_size=40))))
def test_what_the_rule_lets_through_reads_back_as_one_plain_address(value):
    try:
        address = addresses.normalize(value)
    except addresses.InvalidAddress as refused:
        assert str(refused) in MESSAGES
        return
    assert len(address) <= addresses.MAX_LENGTH and address.isascii() and "=?" not in address
    assert not any(unicodedata.category(ch)[0] in "CZ" for ch in address)
    assert str(make_header(decode_header(address))) == address and parseaddr(address) == ("", address)
    assert addresses.normalize(address) == address
    message = EmailMessage(policy=default_policy)
    message["To"] = address
    assert getaddresses(message.get_all("To")) == [("", address)]
