"""Property-based tests (hypothesis, the "ci" profile of tests/test_fuzz.py) over the booking and waitlist
pages: whatever the token (cut, forged, signed with any payload, meant for another page) and whatever the
form, never a 5xx, and an invalid request changes nothing.
"""
from __future__ import annotations

from datetime import datetime

from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core import tokens
from newsletter.core.extensions import db
from newsletter.inquiries import booking, waitlist
from newsletter.models import Inquiry, WaitlistEntry
from tests.helpers import ONE_SLOT_A_DAY, assert_answered, examples, hostile_text, submit
from tests.routes import changes, snapshot, token_of

# Ids a signed payload may carry that no row has, or that only look like an id (True == 1 in Python).
ODD_IDS = st.sampled_from([True, False, 0, -1, 1, 2, 2**31, 2**63, 10**30, 1.0, "1"])
PAYLOADS = st.recursive(
    st.one_of(ODD_IDS, st.none(), st.integers(), st.floats(allow_nan=False), hostile_text(30)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(hostile_text(8), children, max_size=3)),
    max_leaves=6,
)


def generated_tokens(live: str, purposes: list[str]) -> st.SearchStrategy[str]:
    """The live token cut or extended, hostile text, and tokens correctly signed (for this page or
    another) around any payload."""
    return st.one_of(
        st.builds(lambda cut, tail: live[:cut] + tail, st.integers(0, len(live)), hostile_text(20)),
        hostile_text(60).filter(lambda text: text and "/" not in text and text not in (".", "..")),
        st.tuples(st.sampled_from(purposes), PAYLOADS),
    )


def signed(app, token) -> str:
    """A generated token: text as is, or (purpose, payload) signed with the app's key."""
    if isinstance(token, str):
        return token
    with app.app_context():
        return tokens.make(*token)


def rows(app) -> tuple[str, str, int]:
    """A live booking link, a live waitlist link, and the inquiry id the booking link is for."""
    with app.app_context():
        practice.ensure_profile().consultation_hours = ONE_SLOT_A_DAY
        db.session.commit()
        offered = db.session.get(Inquiry, submit(email="offered@example.org").inquiry_id)
        waiting = submit(email="waiting@example.org", waitlist=True).inquiry_id
        entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.inquiry_id == waiting))
        return token_of(booking.booking_url(offered)), token_of(waitlist.answer_url(entry)), offered.id


def books(app, slot: str) -> bool:
    """True when the consultation page would book this slot value (what the view parses, once the request has
    dropped any NUL character from it: web.FormRequest)."""
    try:
        starts_at = datetime.strptime(slot.replace("\x00", ""), "%Y-%m-%dT%H:%M")
    except ValueError:
        return False
    with app.app_context():
        return starts_at in booking.open_slots()


def test_the_booking_page_never_fails_and_a_bad_request_books_nothing(app, smtp):
    client = app.test_client()
    live, _, _ = rows(app)
    with app.app_context():
        open_slot = booking.open_slots()[0].strftime("%Y-%m-%dT%H:%M")

    @examples(40)
    @given(token=st.one_of(st.just(live), generated_tokens(live, [booking.TOKEN_PURPOSE, waitlist.TOKEN_PURPOSE])),
           slot=st.one_of(hostile_text(40), st.builds(lambda cut, tail: open_slot[:cut] + tail,
                                                      st.integers(0, len(open_slot)), hostile_text(6))),
           method=st.sampled_from(["get", "head", "post"]),
           extra=st.dictionaries(hostile_text(20), hostile_text(40), max_size=3))
    def consultation(token, slot, method, extra):
        token = signed(app, token)
        assume(not (token == live and books(app, slot)))  # the one valid request books, as it should
        before = snapshot(app, smtp)
        response = getattr(client, method)(f"/consultation/{token}", data={**extra, "slot": slot})
        assert_answered(response)
        assert changes(before, snapshot(app, smtp)) == []

    consultation()


def test_the_waitlist_page_never_fails_and_a_bad_answer_changes_nothing(app, smtp):
    client = app.test_client()
    _, live, _ = rows(app)

    @examples(40)
    @given(token=st.one_of(st.just(live), generated_tokens(live, [waitlist.TOKEN_PURPOSE, booking.TOKEN_PURPOSE])),
           answer=hostile_text(20), method=st.sampled_from(["get", "head", "post"]),
           extra=st.dictionaries(hostile_text(20), hostile_text(40), max_size=3))
    def answer_page(token, answer, method, extra):
        token = signed(app, token)
        assume(not (token == live and method == "post" and answer in ("keep", "leave")))
        before = snapshot(app, smtp)
        response = getattr(client, method)(f"/waitlist/{token}", data={**extra, "answer": answer})
        assert_answered(response)
        assert changes(before, snapshot(app, smtp)) == []

    answer_page()
