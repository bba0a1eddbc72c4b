"""One rule, one place: what may be used once is used once, even when the requests arrive together.

Recovery codes, TOTP steps and the lockout counter are each claimed with one conditional UPDATE
(users.claim); a clinician's consultation slot by the database's unique (host, start). These tests fire
the same thing from several browser sessions at the same moment, on both databases, and look at what a
user would notice: who got in, how many codes were checked (the audit log), how many lockout notices went
to the practice, who got the slot and who the "just taken" page.
"""
from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import func, select

from newsletter.core import tokens
from newsletter.core.extensions import db
from newsletter.inquiries import booking
from newsletter.models import Consultation, OutgoingMail
from tests.helpers import ADMIN_PASSWORD, ONE_SLOT_A_DAY, at_once, audit_actions, clinician, next_code, submit
from tests.support import change_settings


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def sessions_at_the_code_step(auth, app, admin_email: str, count: int):
    """Two-step sign-in turned on, then `count` browsers that each passed the password step."""
    first = app.test_client()
    auth.sign_in(admin_email, ADMIN_PASSWORD, client=first)
    secret, codes = auth.turn_on_second_factor(first)
    first.post("/admin/logout")
    browsers = [app.test_client() for _ in range(count)]
    for browser in browsers:
        assert auth.sign_in(admin_email, ADMIN_PASSWORD, client=browser).headers["Location"].startswith("/admin/login/code")
    return browsers, secret, codes


def lockout_notices(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OutgoingMail)
                                 .where(OutgoingMail.kind == "admin_lockout"))


def wrong_code(secret: str) -> str:
    """Six digits that are not the code of the previous, current or next 30-second step."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    return next(code for code in (f"{n:06d}" for n in range(1000)) if code not in valid)


def test_one_recovery_code_from_four_sessions_at_once_signs_in_once(auth, app, admin):
    browsers, _, codes = sessions_at_the_code_step(auth, app, admin, 4)

    at_once([lambda browser=browser: browser.post("/admin/login/code", data={"code": codes[0]})
             for browser in browsers])

    assert [signed_in(browser) for browser in browsers].count(True) == 1
    assert audit_actions(app).count("recovery_code_used") == 1


def test_one_authenticator_code_from_four_sessions_at_once_signs_in_once(auth, app, admin):
    browsers, secret, _ = sessions_at_the_code_step(auth, app, admin, 4)
    code = next_code(secret)

    at_once([lambda browser=browser: browser.post("/admin/login/code", data={"code": code})
             for browser in browsers])

    assert [signed_in(browser) for browser in browsers].count(True) == 1


def test_many_wrong_codes_at_once_check_no_more_than_the_limit_and_send_one_notice(auth, app, admin):
    limit = app.extensions["settings"].admin_lockout_attempts
    browsers, secret, _ = sessions_at_the_code_step(auth, app, admin, 8)
    code = wrong_code(secret)

    def six_wrong_codes(browser):
        return [browser.post("/admin/login/code", data={"code": code}).status_code for _ in range(6)]

    answers = at_once([lambda browser=browser: six_wrong_codes(browser) for browser in browsers])

    assert all(status < 500 for statuses in answers for status in statuses)
    actions = audit_actions(app)
    assert actions.count("sign_in_failed") == limit  # each one a code that was actually checked
    assert actions.count("lockout") == 1 and lockout_notices(app) == 1
    assert not any(signed_in(browser) for browser in browsers)
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=app.test_client()).status_code == 400  # locked: even the password is refused


def test_many_wrong_passwords_at_once_check_no_more_than_the_limit_and_send_one_notice(auth, app, admin):
    change_settings(app, ADMIN_LOCKOUT_ATTEMPTS=3)
    browsers = [app.test_client() for _ in range(6)]

    answers = at_once([lambda browser=browser, n=n: auth.sign_in(admin, f"wrong guess {n}", client=browser).status_code
                       for n, browser in enumerate(browsers)])

    assert answers == [400] * 6
    actions = audit_actions(app)
    assert actions.count("sign_in_failed") == 3 and actions.count("sign_in_refused_locked") == 3
    assert actions.count("lockout") == 1 and lockout_notices(app) == 1
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=app.test_client()).status_code == 400


def test_a_right_password_gives_its_attempt_back(auth, app, admin):
    """Counting before checking must not lock out the therapist who signs in often."""
    change_settings(app, ADMIN_LOCKOUT_ATTEMPTS=3)
    client = app.test_client()
    for _ in range(5):
        assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302
        client.post("/admin/logout")
    auth.sign_in(admin, "wrong guess", client=client)
    auth.sign_in(admin, "wrong guess again", client=client)
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302


def booking_page(email: str, slug: str) -> str:
    """The booking page of a new inquiry for this clinician (the link her reply would carry)."""
    return f"/consultation/{tokens.make(booking.TOKEN_PURPOSE, submit(email=email, clinician=slug).inquiry_id)}"


def test_one_clinicians_slot_chosen_by_two_of_her_inquirers_at_once_is_booked_once(app):
    """A third inquirer, another clinician's, books the same time at the same moment: her calendar is her own."""
    with app.app_context():
        maya, leo = clinician("maya", hours=ONE_SLOT_A_DAY), clinician("leo", hours=ONE_SLOT_A_DAY)
        pages = [booking_page("dana@example.com", "maya"), booking_page("sam@example.com", "maya"),
                 booking_page("kim@example.com", "leo")]
    slot = re.search(r'name="slot" value="([^"]+)"', app.test_client().get(pages[0]).get_data(as_text=True)).group(1)
    browsers = [app.test_client() for _ in pages]

    answers = at_once([lambda browser=browser, page=page: browser.post(page, data={"slot": slot})
                       for browser, page in zip(browsers, pages)])

    mayas = sorted(answers[:2], key=lambda response: response.status_code)
    assert [response.status_code for response in mayas] == [200, 409]
    assert "You're booked" in mayas[0].get_data(as_text=True)
    assert "that time was just taken" in mayas[1].get_data(as_text=True)
    assert answers[2].status_code == 200 and "You're booked" in answers[2].get_data(as_text=True)
    with app.app_context():
        assert sorted(db.session.scalars(select(Consultation.host_id))) == sorted([maya, leo])
