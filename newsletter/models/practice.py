from __future__ import annotations

from sqlalchemy import String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db


class PracticeProfile(db.Model):
    """The practice's own details, shown in mail and pages; a single row, edited in the admin."""

    __tablename__ = "practice_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_name: Mapped[str] = mapped_column(String(200), default="Inner Calm Counseling")
    therapist_name: Mapped[str] = mapped_column(String(200), default="Shoshana Ort, LCSW")
    credentials: Mapped[str] = mapped_column(
        String(300), default="Licensed Clinical Social Worker · Emotionally Focused Couples Therapy"
    )
    # The lines she signs with, above her contact details (taken from the sample article's signature).
    signature: Mapped[str] = mapped_column(
        Text, default="Shoshana Ort, LCSW\nLicensed Clinical Social Worker\nEmotionally Focused Couples Therapy"
    )
    postal_address: Mapped[str] = mapped_column(String(300), default="Greenwood Village, CO")
    website: Mapped[str] = mapped_column(String(300), default="https://www.innercalmcounseling.com")
    email: Mapped[str] = mapped_column(String(320), default="shoshanaortlcsw@gmail.com")
    phone: Mapped[str] = mapped_column(String(40), default="720-772-7149")
    tagline: Mapped[str] = mapped_column(
        String(300), default="Articles on couples, connection and Emotionally Focused Therapy"
    )
    # Office days for the reply-by clock (newsletter/business_days.py): ISO weekday digits, Monday 1.
    working_days: Mapped[str] = mapped_column(String(7), default="12345", server_default="12345")
    holidays: Mapped[str] = mapped_column(Text, default="", server_default="")  # one ISO date a line
    # Off: the contact form offers the waitlist instead; waitlisted people are asked every N weeks.
    accepting_clients: Mapped[bool] = mapped_column(default=True, server_default=true())
    waitlist_check_weeks: Mapped[int] = mapped_column(default=6, server_default="6")
    # For a kind close-out when she is not the right fit: colleagues she refers to and low-cost options.
    referral_colleagues: Mapped[str] = mapped_column(Text, default="", server_default="")
    low_cost_options: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Weekly hours for free 15-minute consultations, a window a line: "Tuesday 14:00-16:00".
    consultation_hours: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Off by default: links in issues go straight to their address. On: through /r/... which counts clicks per
    # link, never per reader (publishing/clicks.py); the privacy page says so.
    count_clicks: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A group practice: "whoever fits" goes to the coordinator ("coordinator") or in turn to an accepting
    # clinician who works with what was asked ("round_robin"); a clinician's inquiries reach their own inbox
    # in full ("full") or as a notice linking to the admin ("notice").
    routing: Mapped[str] = mapped_column(String(20), default="coordinator", server_default="coordinator")
    assignee_mail: Mapped[str] = mapped_column(String(20), default="full", server_default="full")
