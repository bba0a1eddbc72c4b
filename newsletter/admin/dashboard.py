"""The admin home: the dashboard of readers, issues and inquiries."""
from __future__ import annotations

from flask import render_template

from newsletter import dashboard
from newsletter.admin.blueprint import bp
from newsletter.inquiries.reports import describe_wait


@bp.get("/")
def home():
    figures = dashboard.build()
    chart = dashboard.line_chart([point.readers for point in figures.readers_over_time])
    return render_template("admin/dashboard.html", figures=figures, chart=chart, describe_wait=describe_wait)
