"""How fast is the admin readers list at 100,000 readers, on SQLite and PostgreSQL?

Usage: .venv/bin/python bench/readers_list.py [--readers 100000] [--runs 15] [--postgres URL]

For each database it fills a fresh schema, signs in, and times (median of --runs) the whole
HTTP request for the first page, a deep page (the oldest readers) and filtered pages, against a
baseline measured in the same run: the bare SELECT of the same rows. It also times what OFFSET
paging would cost for the deep page, which is why the list pages by id instead.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter import accounts, create_app  # noqa: E402
from newsletter.core.extensions import db  # noqa: E402
from newsletter.models import Subscriber, utcnow  # noqa: E402

STATUSES = ["active"] * 16 + ["unsubscribed", "unsubscribed", "pending", "bounced"]


def median_ms(action, runs: int) -> float:
    action()  # warm caches, as a therapist's second click would
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def fill(count: int) -> None:
    now = utcnow()
    for start in range(0, count, 5000):
        db.session.execute(insert(Subscriber), [
            {"email": f"reader{n:06d}@example.org", "name": f"Reader {n}", "status": STATUSES[n % len(STATUSES)],
             "source": "site", "token_key": "k" * 32, "created_at": now}
            for n in range(start, min(start + 5000, count))
        ])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE subscribers"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def bench(label: str, database_url: str, count: int, runs: int) -> list[tuple]:
    instance = tempfile.mkdtemp(prefix="bench-readers-")
    os.environ["INSTANCE_PATH"] = instance
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "bench", "TESTING": True,
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "REDIS_URL": ""})
    rows = []
    with app.app_context():
        db.create_all()
        fill(count)
        accounts.set_admin("bench@example.org", "bench-password-123")
        db.session.commit()
        client = app.test_client()
        signed_in = client.post("/admin/login", data={"email": "bench@example.org", "password": "bench-password-123"})
        assert signed_in.status_code == 302, "the bench admin signs in"
        deep_after = 1001  # the page that ends with the very first readers
        connection = db.engine.connect()

        def page(query: str):
            response = client.get(f"/admin/readers{query}")
            assert response.status_code == 200, response.status_code

        def bare(sql: str):
            connection.execute(text(sql)).all()

        cases = [
            ("page 1", "", "SELECT * FROM subscribers ORDER BY id DESC LIMIT 51"),
            ("deep page (oldest readers)", f"?after={deep_after}",
             f"SELECT * FROM subscribers WHERE id < {deep_after} ORDER BY id DESC LIMIT 51"),
            ("status=bounced, page 1", "?status=bounced",
             "SELECT * FROM subscribers WHERE status = 'bounced' ORDER BY id DESC LIMIT 51"),
            ("status=bounced, deep page", f"?status=bounced&after={deep_after}",
             f"SELECT * FROM subscribers WHERE status = 'bounced' AND id < {deep_after} ORDER BY id DESC LIMIT 51"),
            ("search 'reader00042' (substring scan)", "?q=reader00042",
             "SELECT * FROM subscribers WHERE lower(email) LIKE '%reader00042%' OR lower(name) LIKE '%reader00042%'"
             " ORDER BY id DESC LIMIT 51"),
        ]
        for name, query, sql in cases:
            page_ms = median_ms(lambda: page(query), runs)
            bare_ms = median_ms(lambda: bare(sql), runs)
            rows.append((label, name, page_ms, bare_ms))
        offset_ms = median_ms(lambda: bare(f"SELECT * FROM subscribers ORDER BY id DESC LIMIT 50 OFFSET {count - 1050}"),
                              runs)
        counts_ms = median_ms(lambda: bare("SELECT status, count(*) FROM subscribers GROUP BY status"), runs)
        rows.append((label, "(for comparison) bare OFFSET query for the deep page", offset_ms, None))
        rows.append((label, "(cached for a minute, not in the pages above) status counts", counts_ms, None))
        connection.close()
        db.session.remove()
        db.engine.dispose()
    return rows


def postgres_database(admin_url: str):
    name = f"bench_readers_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin, name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL",
                                                             "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    results = bench("SQLite", f"sqlite:///{tempfile.mkdtemp(prefix='bench-sqlite-')}/bench.sqlite", args.readers, args.runs)
    admin, name, url = postgres_database(args.postgres)
    try:
        results += bench("PostgreSQL", url, args.readers, args.runs)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    print(f"\nAdmin readers list, {args.readers:,} readers, median of {args.runs} runs (ms)\n")
    print(f"{'database':<11} {'request':<52} {'page':>8} {'bare SELECT':>12} {'ratio':>7}")
    for label, case, page_ms, bare_ms in results:
        baseline = f"{bare_ms:12.2f}" if bare_ms is not None else " " * 12
        ratio = f"{page_ms / bare_ms:7.1f}" if bare_ms else " " * 7
        print(f"{label:<11} {case:<52} {page_ms:8.2f} {baseline} {ratio}")


if __name__ == "__main__":
    main()
