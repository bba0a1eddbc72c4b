"""The Flask application factory: create_app reads like a table of contents."""
from __future__ import annotations

import logging
import os
from typing import Mapping

import click
from dotenv import load_dotenv
from flask import Flask, g, render_template, request
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.core import config as config_module
from newsletter.core.extensions import celery_init_app, db

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: Mapping | None = None, *, web: bool = True) -> Flask:
    """Build the app from the environment (and `.env`); `config` overrides settings (SPEC.md names) and Flask keys.

    `web=False` builds what a Celery worker needs (settings, database, Celery, mail templates) and
    leaves out pages, forms, sign-in, rate limits and the `flask` commands: a worker never serves
    a request, and they are a fifth of its memory."""
    load_dotenv(os.path.join(ROOT, ".env"), override=False)
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or os.path.join(ROOT, "instance"),
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    overrides = dict(config or {})
    settings = config_module.load(os.environ, app.instance_path, overrides)
    app.extensions["settings"] = settings
    app.config.update(config_module.flask_config(settings))
    app.config.update({name: value for name, value in overrides.items()
                       if name not in config_module.SETTING_NAMES})

    if web and settings.redis_url:
        app.config["CELERY"]["broker_transport_options"].update(config_module.HAND_OFF_FAIL_FAST)
    db.init_app(app)
    celery_init_app(app)
    register_template_helpers(app)
    configure_logging(app)
    if web:
        register_web(app)
    return app


def register_web(app: Flask) -> None:
    from newsletter.web import FormRequest

    app.request_class = FormRequest  # NUL characters never reach a form or the database
    hops = app.extensions["settings"].proxy_fix_hops
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)


def register_extensions(app: Flask) -> None:
    from newsletter.core.web_extensions import csrf, limiter, login_manager

    register_migrations(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = "Please sign in to continue."

    from newsletter import security
    from newsletter.web import session_user

    login_manager.user_loader(session_user)
    security.init_app(app)


def register_migrations(app: Flask) -> None:
    """`flask db ...` (Flask-Migrate), bound to the app when a `db` command runs: Alembic, Mako and Pygments
    (about 13 MB) stay out of the web processes, which never migrate."""

    class MigrationCommands(click.Group):
        def make_context(self, info_name, args, parent=None, **extra):
            return migrations(app).make_context(info_name, args, parent=parent, **extra)  # the real group runs

    app.cli.add_command(MigrationCommands("db", help="Perform database migrations (Flask-Migrate)."))


def migrations(app: Flask) -> click.Group:
    """Flask-Migrate on this app (set up once); its `db` command group."""
    from flask_migrate import Migrate
    from flask_migrate.cli import db as commands

    if "migrate" not in app.extensions:
        Migrate(app, db, directory=os.path.join(ROOT, "migrations"))
    return commands


def register_blueprints(app: Flask) -> None:
    from newsletter.admin import bp as admin_bp
    from newsletter.deliverability.webhooks import bp as webhooks_bp
    from newsletter.public import bp as public_bp
    from newsletter.web import DatabaseIdConverter

    app.url_map.converters["int"] = DatabaseIdConverter  # ids past the database's range are a 404

    app.register_blueprint(public_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(webhooks_bp)


def register_errorhandlers(app: Flask) -> None:
    def render_error(error):
        code = getattr(error, "code", 500) or 500
        if request.path.startswith("/healthz"):
            return {"error": getattr(error, "name", "error")}, code
        return render_template("error.html", error=error, code=code), code

    for code in (400, 403, 404, 405, 413, 429, 500, 503):
        app.register_error_handler(code, render_error)

    from newsletter.web import DATABASE_UNAVAILABLE, rollback_quietly

    def database_unavailable(error):
        """The database is down or unreachable: a kind 503 page, never a traceback."""
        rollback_quietly()
        g.database_unavailable = True  # the error page shows the visitor as signed out: no second try
        app.logger.error("database unavailable (%s)", type(error).__name__)
        if request.path.startswith("/healthz"):
            return {"error": "database unavailable"}, 503
        return render_template("error.html", error=error, code=503, typed=_words_typed()), 503

    for exception in DATABASE_UNAVAILABLE:
        app.register_error_handler(exception, database_unavailable)


# Form fields never shown back on an error page: secrets, and the fields the visitor did not write.
_NOT_SHOWN_BACK = ("password", "code", "token", "secret", "csrf", "website")


def _words_typed() -> list[tuple[str, str]]:
    """What a POST that failed for want of the database carried, so the 503 page can show it back
    to copy: nothing typed is lost, whichever form it came from. Secrets are left out."""
    if request.method != "POST":
        return []
    return [(name, value) for name, value in request.form.items(multi=True)
            if value.strip() and not any(word in name.lower() for word in _NOT_SHOWN_BACK)]


def register_template_helpers(app: Flask) -> None:
    from newsletter.accounts import practice

    @app.context_processor
    def inject_practice():
        return {"practice": practice.profile()}

    app.jinja_env.filters["local_time"] = practice.local_time


def register_commands(app: Flask) -> None:
    from newsletter.commands import register

    register(app)


def configure_logging(app: Flask) -> None:
    from newsletter.core.logredact import redact_every_record

    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_every_record()  # the development server's access log, the app's and the libraries' logs
