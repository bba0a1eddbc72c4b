"""Admin: does the sender domain pass SPF, DKIM and DMARC, and what to publish if not."""
from __future__ import annotations

from flask import redirect, render_template, url_for

from newsletter.admin.blueprint import bp
from newsletter.core.config import settings
from newsletter.deliverability import domain_check


@bp.get("/sender-domain")
def sender_domain():
    """The last check (kept a few minutes)."""
    return render_template("admin/sender_domain.html", report=domain_check.report(settings()))


@bp.post("/sender-domain")
def sender_domain_check():
    """"Check again" (CSRF-checked app-wide): look again now."""
    domain_check.report(settings(), refresh=True)
    return redirect(url_for("admin.sender_domain"))
