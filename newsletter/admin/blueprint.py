from flask import Blueprint, request
from flask_login import current_user

from newsletter.extensions import login_manager

bp = Blueprint("admin", __name__)


@bp.before_request
def require_sign_in():
    """Everything under /admin needs a signed-in admin, except the sign-in page itself."""
    if request.endpoint != "admin.login" and not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None
