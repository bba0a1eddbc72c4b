"""Does admin sign-in take as long for an unknown address, a wrong password and a locked account?

Usage: .venv/bin/python bench/signin_timing.py [--runs 30]

On a fresh SQLite database with one admin, times (median of --runs, interleaved so that a busy
machine slows every case alike) the whole sign-in request for: an address with no account, the
admin's address with a wrong password, and the admin's address once locked. The ratios against the
unknown address should stay near 1.0: sign-in must not tell which addresses have accounts, nor
(through timing) that an account is locked.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter import accounts, create_app  # noqa: E402
from newsletter.core.extensions import db  # noqa: E402

ADMIN = "bench@example.org"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-signin-")
    os.environ["INSTANCE_PATH"] = folder
    app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.sqlite", "SECRET_KEY": "bench", "TESTING": True,
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "REDIS_URL": "", "SMTP_HOST": "",
                      "ADMIN_LOCKOUT_ATTEMPTS": 10_000_000})
    with app.app_context():
        db.create_all()
        accounts.set_admin(ADMIN, "bench-password-123")
        accounts.set_admin("locked@example.org", "bench-password-123").locked_until = accounts.utcnow().replace(year=2999)
        db.session.commit()
    client = app.test_client()
    cases = {
        "unknown address": {"email": "nobody@example.org", "password": "wrong password"},
        "wrong password": {"email": ADMIN, "password": "wrong password"},
        "locked account, right password": {"email": "locked@example.org", "password": "bench-password-123"},
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs + 1):
        for name, data in cases.items():
            started = time.perf_counter()
            assert client.post("/admin/login", data=data).status_code == 400
            timings[name].append((time.perf_counter() - started) * 1000)
    baseline = statistics.median(timings["unknown address"][1:])
    print(f"\nAdmin sign-in refused, median of {args.runs} runs (ms)\n")
    for name, values in timings.items():
        median = statistics.median(values[1:])
        print(f"{name:<32} {median:8.1f} {median / baseline:6.2f}x")


if __name__ == "__main__":
    main()
