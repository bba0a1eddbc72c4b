"""Admin: does the sender domain pass SPF, DKIM and DMARC, and what to publish if not."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from newsletter.admin.blueprint import bp
from newsletter.core.config import settings
from newsletter.deliverability import domain_check


@bp.route("/sender-domain", methods=["GET", "POST"])
def sender_domain():
    """The last check (kept a few minutes); "Check again" (POST, CSRF-checked app-wide) looks again now."""
    if request.method == "POST":
        domain_check.report(settings(), refresh=True)
        return redirect(url_for("admin.sender_domain"))
    return render_template("admin/sender_domain.html", report=domain_check.report(settings()))
