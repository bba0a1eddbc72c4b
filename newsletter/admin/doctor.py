"""Admin: the installation's health (the checks of `flask doctor`), and a banner on every admin page
when beat or every worker has gone silent."""
from __future__ import annotations

from flask import render_template
from flask_login import current_user

from newsletter import doctor, heartbeats
from newsletter.admin.blueprint import bp
from newsletter.core.config import settings


@bp.get("/doctor")
def doctor_report():
    """Every check of `flask doctor`, one line each with what to do."""
    report = doctor.run(settings())
    return render_template("admin/doctor.html", report=report, failed=doctor.failed(report))


@bp.context_processor
def background_silences():
    """`silences` for the admin layout's banner: beat or every worker quiet past heartbeats.SILENT_AFTER."""
    if not current_user.is_authenticated:
        return {}
    return {"silences": heartbeats.silences()}
