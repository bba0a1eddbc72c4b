"""A group practice's clinicians: their profiles and the team page, the contact form naming one of them,
routing (to the named clinician alone, to the coordinator, or in turn), handing an inquiry on with the
reply-by reminders following it, their signature, booking link and .ics organizer in what is sent."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import func, select

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import booking, photos
from newsletter.models import AdminUser, Clinician, Consultation, Inquiry, InquiryNote
from tests.helpers import (
    CONFIRMED,
    FORM,
    ONE_SLOT_A_DAY,
    PRACTICE,
    examples,
    hostile_text,
    photo_file,
    queued,
    run_due,
    text_of,
)
from tests.support import apply_stored_forms, wait_for

MAYA, LEO, ANA, SAM = "maya@newsletter.test", "leo@newsletter.test", "ana@newsletter.test", "sam@newsletter.test"
COORDINATOR = "intake@newsletter.test"
PROFILES = {  # address: (name, slug, works with, accepting)
    MAYA: ("Maya López, LMFT", "maya-lopez", "couples, EFT", True),
    LEO: ("Leo Park, LPC", "leo-park", "couples, individuals", True),
    ANA: ("Ana Silva, PhD", "ana-silva", "teens, trauma", True),
    SAM: ("Sam Reed, LCSW", "sam-reed", "couples", False),
}


def person(email: str, role: str) -> int:
    """Someone of the practice with a role, made directly (invitations are another page's work); their id."""
    row = AdminUser(email=email, password_hash="not-a-usable-hash", role=role)
    db.session.add(row)
    db.session.commit()
    return row.id


def add_profile(client, email: str) -> None:
    """The owner adds this clinician's profile through the Team page."""
    name, slug, works_with, accepting = PROFILES[email]
    admin_id = db.session.scalar(select(AdminUser.id).where(AdminUser.email == email))
    data = {"admin_id": str(admin_id), "name": name, "slug": slug, "works_with": works_with, "languages": "English",
            "fees": "$160 a session; out of network", "signature": f"{name}\nAssociate therapist",
            "booking_link": f"https://book.example/{slug}" if email == MAYA else ""}
    if accepting:
        data["accepting_clients"] = "y"
    response = client.post("/admin/team", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)


def team_of(client, *emails: str, coordinator: bool = True, routing: str = "coordinator") -> None:
    """These clinicians, each with a profile, an intake coordinator, and the routing the practice chose."""
    for email in emails:
        person(email, "clinician")
        add_profile(client, email)
    if coordinator:
        person(COORDINATOR, "coordinator")
    assert client.post("/admin/team/routing", data={"routing": routing, "assignee_mail": "full"}).status_code == 302


def assignee_of(inquiry_id: int) -> str | None:
    db.session.expire_all()  # the test client shares this app context and its signed-in user
    return db.session.scalar(select(AdminUser.email).join(Inquiry, Inquiry.assignee_id == AdminUser.id)
                             .where(Inquiry.id == inquiry_id))


def inquiry_ids() -> list[int]:
    db.session.expire_all()  # the test client shares this app context and its signed-in user
    return list(db.session.scalars(select(Inquiry.id).order_by(Inquiry.id)))


def write(client, email: str, message: str = FORM["message"], **fields) -> int:
    """An inquiry through the contact page; its id."""
    response = client.post("/contact", data={**FORM, "email": email, "message": message, **fields})
    assert response.status_code == 200, response.get_data(as_text=True)
    return inquiry_ids()[-1]


def test_an_inquiry_for_a_named_clinician_reaches_only_their_inbox(app_ctx, admin_client, smtp, worker):
    team_of(admin_client, MAYA, LEO)

    page = admin_client.get("/contact?clinician=leo-park").get_data(as_text=True)
    assert "Write to Leo Park, LPC" in page and '<option selected value="leo-park">' in page
    response = admin_client.post("/contact", data={**FORM, "clinician": "leo-park"})

    assert response.status_code == 200 and "Leo Park, LPC typically replies" in response.get_data(as_text=True)
    smtp.wait_for_messages(2, timeout=60)
    [forward] = smtp.to(LEO)
    assert FORM["message"] in forward.text and forward.message["Reply-To"] == "Dana Reyes <dana@example.com>"
    assert forward.message["From"].addresses[0].addr_spec == LEO, "From equals To: rspamd's SPOOF_REPLYTO spares it"
    assert smtp.to(PRACTICE) == [] and smtp.to(MAYA) == [] and smtp.to(COORDINATOR) == []
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted([LEO, FORM["email"]])
    [ack] = smtp.to(FORM["email"])
    assert "Leo Park, LPC typically replies within" in ack.text, "the acknowledgement names who will answer"


def test_whoever_fits_goes_to_the_coordinator_when_the_practice_chose_so(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO)

    inquiry_id = write(admin_client, "kim@example.com")
    apply_stored_forms(app_ctx)

    assert assignee_of(inquiry_id) == COORDINATOR
    assert [m["To"] for m in queued("inquiry_forward")] == [COORDINATOR]


def test_round_robin_spreads_among_accepting_clinicians_who_work_with_what_was_asked(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO, ANA, SAM, routing="round_robin")

    couples = [write(admin_client, f"couple{n}@example.com", f"My partner and I are a couple in trouble ({n}).")
               for n in range(4)]
    teen = write(admin_client, "parent@example.com", "Our teenager is struggling at school.")
    other = [write(admin_client, f"other{n}@example.com", f"I would like to talk to someone ({n}).") for n in range(3)]

    assert [assignee_of(i) for i in couples] == [MAYA, LEO, MAYA, LEO], "Sam takes no new clients; Ana no couples"
    assert assignee_of(teen) == ANA
    assert sorted(assignee_of(i) for i in other) == [ANA, LEO, MAYA], "no match: every accepting clinician in turn"


def test_a_reassignment_moves_the_clock_and_the_nudges(app, app_ctx, admin_client, runner, smtp, worker):
    team_of(admin_client, MAYA, LEO)
    inquiry_id = write(admin_client, "kim@example.com", clinician="maya-lopez")
    apply_stored_forms(app)
    reply_by = db.session.get(Inquiry, inquiry_id).reply_by
    leo_id = db.session.scalar(select(AdminUser.id).where(AdminUser.email == LEO))

    asked = admin_client.post(f"/admin/inquiries/{inquiry_id}/assign",
                              data={"assignee": str(leo_id), "note": "Maya is away; Kim asked for evenings."})
    assert "Hand this inquiry to Leo Park, LPC" in asked.get_data(as_text=True) and assignee_of(inquiry_id) == MAYA
    done = admin_client.post(f"/admin/inquiries/{inquiry_id}/assign",
                             data={"assignee": str(leo_id), "note": "Maya is away; Kim asked for evenings.",
                                   **CONFIRMED}, follow_redirects=True)

    assert "Handed to Leo Park, LPC" in done.get_data(as_text=True) and "Answered by <strong" in done.get_data(as_text=True)
    assert assignee_of(inquiry_id) == LEO
    notes = [note.body for note in db.session.scalars(select(InquiryNote))]
    assert notes == ["Handed from Maya López, LMFT to Leo Park, LPC.\nMaya is away; Kim asked for evenings."]
    handoff = wait_for(lambda: [m for m in smtp.to(LEO) if m.message["Subject"] == "An inquiry was handed to you"],
                       timeout=60)[0]
    assert "Kim asked for evenings" in handoff.text and f"/admin/inquiries/{inquiry_id}" in handoff.text

    assert "reply-by reminders: 0" in run_due(runner, f"{reply_by - timedelta(days=1)}T10:00")
    assert "reply-by reminders: 1" in run_due(runner, f"{reply_by}T10:00")
    nudge = wait_for(lambda: [m for m in smtp.to(LEO) if "due for a reply today" in m.message["Subject"]], timeout=60)[0]
    assert f"/admin/inquiries/{inquiry_id}" in nudge.text
    assert not [m for m in smtp.to(MAYA) if "due for a reply" in m.message["Subject"]], "the old assignee is not nudged"
    assert smtp.to(PRACTICE) == [] and smtp.to(COORDINATOR) == []

    assert "reply-by reminders: 1" in run_due(runner, f"{reply_by + timedelta(days=1)}T10:00")
    late = wait_for(lambda: smtp.to(COORDINATOR), timeout=60)[0]
    assert late.message["Subject"] == "An assigned inquiry is past the day promised"
    assert "reply-by reminders: 0" in run_due(runner, f"{reply_by + timedelta(days=2)}T10:00"), "told once"


def test_an_editor_cannot_be_handed_an_inquiry(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO)
    editor_id = person("editor@newsletter.test", "editor")
    inquiry_id = write(admin_client, "kim@example.com", clinician="maya-lopez")

    response = admin_client.post(f"/admin/inquiries/{inquiry_id}/assign",
                                 data={"assignee": str(editor_id), **CONFIRMED}, follow_redirects=True)

    assert "Not a valid choice" in response.get_data(as_text=True) and assignee_of(inquiry_id) == MAYA
    assert db.session.scalar(select(func.count()).select_from(InquiryNote)) == 0


def test_a_discreet_acknowledgement_names_the_chosen_clinician_only_in_its_body(app_ctx, admin_client):
    team_of(admin_client, MAYA, SAM)
    write(admin_client, "kim@example.com", clinician="maya-lopez", discreet="y")
    write(admin_client, "lee@example.com", clinician="sam-reed")
    apply_stored_forms(app_ctx)

    quiet, waiting = queued("inquiry_ack")

    body = text_of(quiet)
    first_line = next(line for line in body.splitlines() if line.strip())
    assert "Maya López, LMFT typically replies within" in body
    assert quiet["Subject"] == "Your message has been received" and "Maya" not in first_line
    assert "LMFT" not in str(quiet["From"]), "the sender stays the quiet one"
    assert "Sam Reed, LCSW isn't able to take new clients" in text_of(waiting)


def test_a_clinician_not_accepting_offers_their_own_waitlist(app_ctx, admin_client):
    team_of(admin_client, MAYA, SAM)

    page = admin_client.get("/contact?clinician=sam-reed").get_data(as_text=True)
    inquiry_id = write(admin_client, "kim@example.com", clinician="sam-reed")

    assert "Join Sam Reed, LCSW's waitlist" in page and "Join the waitlist</button>" in page
    inquiry = db.session.get(Inquiry, inquiry_id)
    assert inquiry.waitlist and inquiry.reply_by is None and assignee_of(inquiry_id) == SAM


def test_an_unknown_clinician_is_a_clear_message_and_nothing_is_stored(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO)

    shown = admin_client.get("/contact?clinician=nobody").get_data(as_text=True)
    refused = admin_client.post("/contact", data={**FORM, "clinician": "nobody"})

    assert "find that clinician. Please choose someone" in shown
    assert refused.status_code == 400 and "find that clinician. Please choose someone" in refused.get_data(as_text=True)
    assert inquiry_ids() == []


def test_a_solo_practice_shows_nothing_about_a_team(app_ctx, admin_client):
    person(MAYA, "clinician")
    add_profile(admin_client, MAYA)

    assert admin_client.get("/team").status_code == 404
    assert 'href="/team"' not in admin_client.get("/").get_data(as_text=True)
    assert 'name="clinician"' not in admin_client.get("/contact?clinician=maya-lopez").get_data(as_text=True)
    inquiry_id = write(admin_client, "kim@example.com", clinician="maya-lopez")
    apply_stored_forms(app_ctx)
    assert assignee_of(inquiry_id) is None and [m["To"] for m in queued("inquiry_forward")] == [PRACTICE]


def test_the_team_page_lists_each_clinician_with_a_contact_link(app_ctx, admin_client):
    team_of(admin_client, MAYA, SAM)

    page = admin_client.get("/team").get_data(as_text=True)

    assert 'href="/team"' in admin_client.get("/").get_data(as_text=True)
    assert "Maya López, LMFT" in page and "couples, EFT" in page and "$160 a session" in page
    assert 'href="/contact?clinician=maya-lopez"' in page and "Join Sam Reed, LCSW&#39;s waitlist" in page


def test_a_profile_for_someone_not_yet_joined_stays_on_the_owners_list_only_and_a_removed_ones_goes(
        app_ctx, admin_client):
    from newsletter.accounts import people

    team_of(admin_client, MAYA, LEO)
    invited = AdminUser(email=ANA, password_hash="", role="clinician")  # invited, has not set a password yet
    db.session.add(invited)
    db.session.commit()
    add_profile(admin_client, ANA)

    owners_list = admin_client.get("/admin/team").get_data(as_text=True)
    assert "Ana Silva, PhD" in owners_list and "has not joined yet" in owners_list
    assert "Ana Silva" not in admin_client.get("/team").get_data(as_text=True)
    people.remove(db.session.scalar(select(AdminUser).where(AdminUser.email == LEO)))
    db.session.commit()
    owners_list = admin_client.get("/admin/team").get_data(as_text=True)
    assert "Leo Park" not in owners_list and "Maya López" in owners_list


def test_someone_removed_no_longer_answers_what_was_theirs_and_one_profile_left_is_a_solo_practice(
        app_ctx, admin_client):
    from newsletter.accounts import people

    team_of(admin_client, MAYA, LEO)
    practice.ensure_profile().consultation_hours = ONE_SLOT_A_DAY
    db.session.query(Clinician).filter_by(slug="leo-park").one().consultation_hours = "Wed 18:00-19:00"
    db.session.commit()
    kim = write(admin_client, "kim@example.com", clinician="leo-park")
    assert assignee_of(kim) == LEO
    people.remove(db.session.scalar(select(AdminUser).where(AdminUser.email == LEO)))
    db.session.commit()
    assert admin_client.get("/team").status_code == 404, "Maya alone is left: no team"
    assert 'name="clinician"' not in admin_client.get("/contact").get_data(as_text=True)

    inquiry = db.session.get(Inquiry, kim)
    consultation, _ = booking.book(inquiry, booking.open_slots(inquiry=inquiry)[0])
    db.session.commit()
    assert consultation.host_id is None, "in the practice's calendar, not in the removed clinician's"
    assert practice.local_time(consultation.starts_at, "%H:%M") == "09:00", "at the practice's hours, not Leo's"
    invites = queued("consultation_invite")
    assert invites and all(LEO not in str(mail["To"]) and LEO not in text_of(mail) for mail in invites)


def test_a_profile_with_a_taken_web_name_or_bad_hours_is_refused_with_a_message(app_ctx, admin_client):
    team_of(admin_client, MAYA)
    person(LEO, "clinician")
    leo_id = db.session.scalar(select(AdminUser.id).where(AdminUser.email == LEO))

    taken = admin_client.post("/admin/team", data={"admin_id": str(leo_id), "name": "Leo", "slug": "maya-lopez"})
    hours = admin_client.post("/admin/team", data={"admin_id": str(leo_id), "name": "Leo", "slug": "leo",
                                                   "consultation_hours": "Someday 25:00"})
    link = admin_client.post("/admin/team", data={"admin_id": str(leo_id), "name": "Leo", "slug": "leo",
                                                  "booking_link": "javascript:alert(1)"})

    assert taken.status_code == 400 and "Another clinician has this web name" in taken.get_data(as_text=True)
    assert hours.status_code == 400 and "like “Tuesday 14:00-16:00”: a weekday" in hours.get_data(as_text=True)
    assert link.status_code == 400 and "starting with https://" in link.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Clinician)) == 1


def test_replies_carry_the_clinicians_signature_and_booking_link_and_the_ics_names_them(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO)
    inquiry_id = write(admin_client, "kim@example.com", clinician="maya-lopez")
    apply_stored_forms(app_ctx)

    response = admin_client.post(f"/admin/inquiries/{inquiry_id}/reply",
                                 data={"body": "Thank you for writing.", "booking_link": "y", **CONFIRMED})

    assert response.status_code == 302
    inquiry = db.session.get(Inquiry, inquiry_id)
    consultation = Consultation(inquiry_id=inquiry_id, starts_at=datetime(2026, 12, 20, 17, 0))
    ics = booking.calendar_file(consultation, inquiry, cancelled=False, for_practice=False).decode()
    assert "ORGANIZER;CN=\"Maya López, LMFT\":mailto:maya@newsletter.test" in ics.replace("\r\n ", "")
    reply = text_of(queued("inquiry_reply")[0]).replace("\r\n", "\n")
    assert "Maya López, LMFT\nAssociate therapist" in reply and "https://book.example/maya-lopez" in reply


def test_the_sources_report_counts_by_clinician(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO)
    for n in range(2):
        write(admin_client, f"kim{n}@example.com", clinician="maya-lopez")
    answered = write(admin_client, "lee@example.com", clinician="leo-park")
    admin_client.post(f"/admin/inquiries/{answered}/call", data={})

    page = admin_client.get("/admin/inquiries/sources").get_data(as_text=True)

    report = page[page.index('id="by-clinician"'):]
    maya_row = report[report.index("Maya López, LMFT"):report.index("</tr>", report.index("Maya López, LMFT"))]
    leo_row = report[report.index("Leo Park, LPC"):report.index("</tr>", report.index("Leo Park, LPC"))]
    assert maya_row.count("<td>2</td>") == 1 and leo_row.count("<td>1</td>") >= 1


def test_the_inquiry_list_says_who_answers_each_and_finds_the_unassigned(app_ctx, auth, admin_client):
    team_of(admin_client, MAYA, LEO)
    for_maya = write(admin_client, "kim@example.com", clinician="maya-lopez")
    for_leo = write(admin_client, "lee@example.com", clinician="leo-park")
    nobodys = write(admin_client, "ash@example.com")
    db.session.get(Inquiry, nobodys).assignee_id = None  # as one from before the practice became a group
    db.session.commit()

    everyone = admin_client.get("/admin/inquiries").get_data(as_text=True)
    unassigned = admin_client.get("/admin/inquiries?assigned=none").get_data(as_text=True)
    maya = auth.login(admin_client.application.test_client(), role="clinician", email=MAYA)
    hers = maya.get("/admin/inquiries").get_data(as_text=True)
    hers_unassigned = maya.get("/admin/inquiries?assigned=none").get_data(as_text=True)

    assert "<th>Answered by</th>" in everyone and "Unassigned (1)" in everyone
    assert re.search(rf'href="/admin/inquiries/{for_maya}".*?class="assigned">Maya López, LMFT<', everyone, re.S)
    assert re.search(rf'href="/admin/inquiries/{for_leo}".*?class="assigned">Leo Park, LPC<', everyone, re.S)
    assert f'/admin/inquiries/{nobodys}"' in unassigned
    assert f'/admin/inquiries/{for_maya}"' not in unassigned and f'/admin/inquiries/{for_leo}"' not in unassigned
    for page in (hers, hers_unassigned):
        assert f'/admin/inquiries/{for_maya}"' in page, "a clinician's list stays theirs, whatever the link asks"
        assert f'/admin/inquiries/{for_leo}"' not in page and f'/admin/inquiries/{nobodys}"' not in page
        assert "Answered by" not in page and "Unassigned (" not in page


def test_a_solo_practices_inquiry_list_has_no_team_column(app_ctx, admin_client):
    person(MAYA, "clinician")
    add_profile(admin_client, MAYA)
    write(admin_client, "kim@example.com")

    page = admin_client.get("/admin/inquiries?assigned=none").get_data(as_text=True)

    assert "Answered by" not in page and "Unassigned" not in page
    assert FORM["name"] in page, "no filter either: the link shows the inbox"


def upload_photo(client, email: str, body: bytes, filename: str = "me.png", follow: bool = False):
    """The photo form of this clinician's profile page, as the signed-in person sends it."""
    clinician_id = db.session.scalar(select(Clinician.id).join(AdminUser).where(AdminUser.email == email))
    return client.post(f"/admin/team/{clinician_id}/photo", content_type="multipart/form-data",
                       data={"photo": (io.BytesIO(body), filename)}, follow_redirects=follow)


def stored_photo(email: str) -> bytes | None:
    db.session.expire_all()  # the test client shares this app context and its signed-in user
    return db.session.scalar(select(Clinician.photo).join(AdminUser).where(AdminUser.email == email))


def test_a_clinicians_photo_shows_on_the_team_page_and_their_profile_with_their_name(app_ctx, admin_client):
    team_of(admin_client, MAYA, LEO)

    saved = upload_photo(admin_client, MAYA, photo_file(), follow=True).get_data(as_text=True)

    assert "Saved. The team page shows the new photo." in saved
    team = admin_client.get("/team").get_data(as_text=True)
    [(src, alt)] = re.findall(r'<img class="portrait" src="([^"]+)" alt="([^"]+)"', team)
    assert alt == "Maya López, LMFT" and f'src="{src}" alt="Maya López, LMFT"' in saved, "Leo has none: no image"
    served = admin_client.get(src)
    assert served.status_code == 200 and served.mimetype == "image/jpeg" and served.data == stored_photo(MAYA)
    assert "max-age=31536000" in served.headers["Cache-Control"] and "immutable" in served.headers["Cache-Control"]

    upload_photo(admin_client, MAYA, photo_file(size=(300, 300)))
    assert admin_client.get(src).status_code == 404, "a new photo is a new URL; the old one names nothing"
    assert src not in admin_client.get("/team").get_data(as_text=True)


def test_a_png_with_hidden_details_is_kept_as_a_small_jpeg_without_them(app_ctx, admin_client):
    team_of(admin_client, MAYA)
    original = photo_file("PNG", size=(1500, 900), secret="Quillbrook Lane 12")
    assert b"Quillbrook" in original

    upload_photo(admin_client, MAYA, original)

    kept = stored_photo(MAYA)
    image = Image.open(io.BytesIO(kept))
    assert image.format == "JPEG" and image.size == (600, 360)
    assert b"Quillbrook" not in kept and not image.getexif() and "exif" not in image.info
    assert "icc_profile" not in image.info and "comment" not in image.info


def test_a_photo_over_the_limit_is_refused_with_a_message_and_nothing_kept(app_ctx, admin_client):
    team_of(admin_client, MAYA)
    upload_photo(admin_client, MAYA, photo_file())
    before = stored_photo(MAYA)

    large = upload_photo(admin_client, MAYA, b"\xff\xd8\xff" + bytes(photos.MAX_BYTES))
    over_request = upload_photo(admin_client, MAYA, bytes(6 * 1024 * 1024))
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")  # a few kilobytes that decode to 81 million pixels
    many_pixels = upload_photo(admin_client, MAYA, bomb.getvalue())

    assert large.status_code == 400 and "That photo is larger than 4 MB" in large.get_data(as_text=True)
    assert over_request.status_code == 413 and "at most 5 MB" in over_request.get_data(as_text=True)
    assert many_pixels.status_code == 400 and "too many pixels" in many_pixels.get_data(as_text=True)
    assert stored_photo(MAYA) == before


def _hostile_files():
    real = photo_file("JPEG", size=(200, 200)), photo_file("PNG", size=(200, 200))
    return st.one_of(
        st.binary(max_size=3000),
        st.sampled_from(real).flatmap(lambda body: st.integers(8, len(body) - 50).map(lambda cut: body[:cut])),
        st.sampled_from(real).flatmap(lambda body: st.binary(min_size=1, max_size=200).map(lambda junk: body[:40] + junk)),
        st.sampled_from([b"GIF89a\x01\x00\x01\x00", b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                         b"%PDF-1.4", b"BM" + bytes(60), b""]))


@examples(40)
@given(body=_hostile_files(), filename=st.one_of(st.sampled_from(["me.png", "me.jpg", "x", "../../etc/passwd"]),
                                                 hostile_text(40)))
@example(body=b"\x89PNG\r\n\x1a\n" + bytes(100), filename="me.png")
def test_hostile_photo_files_are_refused_with_a_message_and_nothing_kept(app, admin_client, body, filename):
    with app.app_context():
        if not db.session.scalar(select(func.count()).select_from(Clinician)):
            db.session.add(Clinician(admin_id=person(MAYA, "clinician"), name="Maya López", slug="maya-lopez"))
            db.session.commit()

        response = upload_photo(admin_client, MAYA, body, filename or "x")

        assert response.status_code == 400, response.status_code
        page = response.get_data(as_text=True)
        assert "Please choose a JPEG or PNG photo" in page or "Please choose a photo." in page
        assert stored_photo(MAYA) is None


SLUGS = st.sampled_from(["maya-lopez", "leo-park", "", "MAYA-LOPEZ", "maya-lopez\x00", "../admin", "leo park"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clinician=st.one_of(SLUGS, hostile_text(80)), name=hostile_text(60), message=hostile_text(200))
def test_hostile_contact_input_with_a_clinician_is_taken_or_refused_never_an_error(app, client, clinician, name,
                                                                                    message):
    with app.app_context():
        if not db.session.scalar(select(func.count()).select_from(Clinician)):
            for email in (MAYA, LEO):
                name, slug, works_with, accepting = PROFILES[email]
                db.session.add(Clinician(admin_id=person(email, "clinician"), name=name, slug=slug,
                                         works_with=works_with, accepting_clients=accepting))
            db.session.commit()
    before = _stored(app)

    response = client.post("/contact", data={**FORM, "name": name, "message": message, "clinician": clinician})

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert 'class="error-summary"' in response.get_data(as_text=True) and _stored(app) == before
    else:
        assert _stored(app) in (before, before + 1)


def _stored(app) -> int:
    with app.app_context():
        db.session.remove()
        return db.session.scalar(select(func.count()).select_from(Inquiry))


@pytest.mark.parametrize("width", [375])
def test_team_page_and_one_clinicians_contact_form_on_a_phone(app, admin_client, live_server, page, width):
    with app.app_context():
        team_of(admin_client, MAYA, LEO)
        upload_photo(admin_client, LEO, photo_file(size=(900, 1200)))
    page.set_viewport_size({"width": width, "height": 800})

    page.goto(f"{live_server}/team")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.get_by_role("img", name="Leo Park, LPC").evaluate("img => img.naturalWidth") == 450, "drawn, 600 high"
    page.get_by_role("link", name="Write to Leo Park, LPC").click()
    page.get_by_role("heading", name="Write to Leo Park, LPC").wait_for()
    assert page.get_by_label("Who would you like to see? (optional)").input_value() == "leo-park"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_label("Your name").fill("Dana Reyes")
    page.get_by_label("Email address").fill("dana@example.com")
    page.get_by_label("How can we help?").fill("We would like to talk to Leo.")
    page.get_by_role("button", name="Send message").click()

    page.get_by_role("heading", name="Thank you for reaching out").wait_for()
    assert "Leo Park, LPC typically replies" in page.content()
    with app.app_context():
        assert assignee_of(inquiry_ids()[-1]) == LEO


@pytest.mark.parametrize("width", [375])
def test_assigning_an_inquiry_on_a_phone(app, auth, admin_page, client, live_server, width):
    with app.app_context():
        assert auth.sign_in().status_code == 302  # the owner the browser signed in as, on the test client too
        team_of(client, MAYA, LEO)
        inquiry_id = write(client, "kim@example.com", clinician="maya-lopez")
    page = admin_page
    page.set_viewport_size({"width": width, "height": 800})

    page.goto(f"{live_server}/admin/inquiries/{inquiry_id}")
    page.get_by_label("Hand it to").select_option(label="Leo Park, LPC")
    page.get_by_label("Handoff note (what they should know)").fill("Maya is away this week.")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_role("button", name="Hand it on").click()
    page.get_by_role("button", name="Yes, hand it on").click()

    page.get_by_text("Handed to Leo Park, LPC").wait_for()
    assert page.locator(".assignee").inner_text() == "Leo Park, LPC"
    with app.app_context():
        assert assignee_of(inquiry_id) == LEO
