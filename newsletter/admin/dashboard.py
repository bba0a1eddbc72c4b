"""The admin home: the dashboard of readers, issues and inquiries."""
from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_login import current_user

from newsletter import dashboard
from newsletter.accounts import roles
from newsletter.admin.blueprint import bp
from newsletter.inquiries.reports import describe_wait


@bp.get("/")
def home():
    """The owner's dashboard; everyone else starts on the page their role works on."""
    if roles.landing(current_user) != "admin.home":
        return redirect(url_for(roles.landing(current_user)))
    figures = dashboard.build()
    chart = dashboard.line_chart([point.readers for point in figures.readers_over_time])
    return render_template("admin/dashboard.html", figures=figures, chart=chart, describe_wait=describe_wait)
