"""The app as production runs it, plus the baseline view bench/web.py measures against.

Only bench/web.py serves this module (gunicorn bench.web_app:app, with BENCH_BASELINE=1); production
serves wsgi:app, which has no such view.
"""
import os

from wsgi import app

if os.environ.get("BENCH_BASELINE") != "1":
    raise RuntimeError("bench.web_app is for bench/web.py only; serve wsgi:app")


@app.get("/bench/bare")
def bare():
    """A Flask view that does nothing: what the framework and gunicorn cost alone."""
    return "ok"
