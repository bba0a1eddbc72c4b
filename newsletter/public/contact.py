"""The contact form for prospective clients, on the site (/contact) and in an iframe (/embed/contact)."""
from __future__ import annotations

import logging

from flask import current_app, render_template, request
from limits import parse_many
from wtforms.fields.choices import SelectChoice

from newsletter.accounts import practice
from newsletter.core.config import settings
from newsletter.core.extensions import commit, db
from newsletter.core.web_extensions import csrf, limiter
from newsletter.inquiries import business_days, intake, routing
from newsletter.mail.addresses import InvalidAddress
from newsletter.public.blueprint import bp
from newsletter.public.forms import ContactForm
from newsletter.tasks import queue_inquiry_mails
from newsletter.web import DATABASE_UNAVAILABLE, allow_embedding, hand_off_after_response, origin, rollback_quietly

log = logging.getLogger(__name__)

# Per IP address. Only inquiries that were taken in count, so a person correcting a typo is never held up.
CONTACT_LIMITS = parse_many("5 per 10 minutes; 20 per day")


@bp.get("/contact")
def contact():
    return _form_page(ContactForm(clinician=request.args.get("clinician", "")), embed=False)


@bp.post("/contact")
def contact_submit():
    return _contact(ContactForm(), embed=False)


def _embed_form(**defaults) -> ContactForm:
    # An iframe on another site gets no session cookie (SameSite), so no CSRF token can work there.
    return ContactForm(meta={"csrf": False}, **defaults)


@bp.get("/embed/contact")
def embed_contact():
    form = _embed_form(clinician=request.args.get("clinician", ""))
    return allow_embedding(current_app.make_response(_form_page(form, embed=True)))


@bp.post("/embed/contact")
@csrf.exempt
def embed_contact_submit():
    return allow_embedding(current_app.make_response(_contact(_embed_form(), embed=True)))


def _contact(form: ContactForm, *, embed: bool):
    """Take in an inquiry (POST)."""
    if not form.validate() or not _known_clinician(form):
        return _form_page(form, embed), 400
    if _over_limit():
        return _form_page(form, embed, too_many=True), 429
    try:
        waitlist = routing.offers_waitlist(_clinician(form))
        result = commit(lambda: intake.submit(
            name=form.name.data,
            email=form.email.data,
            phone=form.phone.data or "",
            preferred_contact=form.preferred_contact.data,
            message=form.message.data,
            origin=origin("embed" if embed else "site"),
            honeypot_filled=form.is_bot,
            details=intake.InquiryDetails(
                partner_name=form.partner_name.data or "",
                heard_from=form.heard_from.data or "",
                heard_from_other=form.heard_from_other.data or "",
                voicemail_ok=form.voicemail_ok.data,
                text_ok=form.text_ok.data,
                discreet=form.discreet.data,
            ),
            waitlist=waitlist,
            clinician=_clinician(form),
        ))
    except InvalidAddress as exc:
        db.session.rollback()
        form.email.errors.append(str(exc))
        return _form_page(form, embed), 400
    except DATABASE_UNAVAILABLE:
        rollback_quietly()
        return _form_page(form, embed, unsaved=True), 503
    _count_toward_limit()
    if result.needs_mail:
        hand_off_after_response(queue_inquiry_mails, result.inquiry_id)
    return render_template("public/contact_done.html", urgent=result.urgent, embed=embed, waitlist=waitlist,
                           chosen=routing.by_slug(_clinician(form)),
                           reply_days=settings().inquiry_reply_business_days,
                           reply_by=business_days.long_date(result.reply_by) if result.reply_by else "")


def _form_page(form: ContactForm, embed: bool, too_many: bool = False, unsaved: bool = False) -> str:
    group = _group()
    if group:
        form.clinician.choices = [*form.clinician.choices, *(SelectChoice(c.slug, c.name) for c in routing.team())]
        if request.method == "GET":
            _known_clinician(form)
    return render_template("public/contact.html", form=form, embed=embed, too_many=too_many, unsaved=unsaved,
                           action=request.path, group=group, chosen=routing.by_slug(_clinician(form)),
                           waitlist=routing.offers_waitlist(_clinician(form)) if group
                           else not practice.profile().accepting_clients)


def _group() -> bool:
    try:
        return routing.is_group()
    except DATABASE_UNAVAILABLE:
        rollback_quietly()
        return False


def _clinician(form: ContactForm) -> str:
    """The slug the visitor chose; "" in a solo practice, where the field is not shown."""
    return (form.clinician.data or "").strip() if _group() else ""


def _known_clinician(form: ContactForm) -> bool:
    """False (with a message on the field) when the form names a clinician the practice does not have."""
    slug = _clinician(form)
    if not slug or routing.by_slug(slug) is not None:
        return True
    form.clinician.data = ""
    form.clinician.errors = [*form.clinician.errors, "We couldn't find that clinician. Please choose someone from "
                             "the list, or “Whoever fits best”."]
    return False


def _limit_keys() -> list[str]:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    return [key for key in (prefix, "contact", request.remote_addr or "unknown") if key]


def _over_limit() -> bool:
    """True when this address has sent as many inquiries as CONTACT_LIMITS allow (when limits are on)."""
    if not settings().ratelimit_enabled:
        return False
    try:
        return not all(limiter.limiter.test(limit, *_limit_keys()) for limit in CONTACT_LIMITS)
    except Exception:  # noqa: BLE001 - the limit's store (Redis) being down must never turn an inquiry away
        log.warning("rate limit store unreachable; contact form not limited")
        return False


def _count_toward_limit() -> None:
    if not settings().ratelimit_enabled:
        return
    try:
        for limit in CONTACT_LIMITS:
            limiter.limiter.hit(limit, *_limit_keys())
    except Exception:  # noqa: BLE001 - as above: the inquiry is stored, the count is only a guard
        log.warning("rate limit store unreachable; inquiry not counted")
