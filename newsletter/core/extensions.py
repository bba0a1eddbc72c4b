"""Bare extension objects every process uses, bound to the app in create_app (keeps imports acyclic).

The web-only ones (CSRF, sign-in, rate limits) are in web_extensions.py, so a worker never imports them."""
from __future__ import annotations

from typing import Callable, TypeVar

from celery import Celery, Task
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
T = TypeVar("T")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite is shared by web, worker and beat: WAL lets readers and one writer overlap."""
    if dbapi_connection.__class__.__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def commit(work: Callable[[], T]) -> T:
    """Run `work` (a service call) and commit; if a simultaneous request inserted the same row first
    (a double click: a unique violation), run it once more, now seeing that row."""
    try:
        result = work()
        db.session.commit()
        return result
    except IntegrityError:
        db.session.rollback()
    result = work()
    db.session.commit()
    return result


def celery_init_app(app: Flask) -> Celery:
    """Bind a Celery app to the Flask app so that every task runs in its app context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
