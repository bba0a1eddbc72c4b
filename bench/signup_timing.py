"""Does /subscribe answer in the same time whatever the address's state? (enumeration by timing)

    .venv/bin/python bench/signup_timing.py [ROUNDS] [DATABASE_URL]

Posts the signup form through the app (no network) for a new address and for known ones (pending,
active, unsubscribed, suppressed), interleaved, with the rate limits on as deployed: each post comes
from its own IP, so from the 6th try on each known address is over its per-address limit (5 an hour)
while each new address is under it. Prints each state's median time until the answer
(the hand-off to the broker after the answer is not counted: the visitor does not wait for it) and
the ratio of medians known/unknown; 1.00 means the form tells nothing. Default: a throw-away SQLite
database, the embedded broker.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _known_addresses(db, subscriptions, suppress) -> dict[str, str]:
    from newsletter.models import Subscriber

    origin = subscriptions.Origin()
    addresses = {"pending": "pending@example.org", "active": "active@example.org",
                 "unsubscribed": "gone@example.org", "suppressed": "bounced@example.org"}
    for state in ("pending", "active", "unsubscribed"):
        subscriptions.subscribe(addresses[state], "", origin, "bench")
    for state in ("active", "unsubscribed"):
        row = db.session.query(Subscriber).filter_by(email=addresses[state]).one()
        subscriptions.confirm(subscriptions.confirm_url(row).rsplit("/", 1)[1], origin)
        # the "already subscribed" note went out once today: later signups send nothing
        subscriptions.subscribe(addresses[state], "", origin, "bench")
    row = db.session.query(Subscriber).filter_by(email=addresses["unsubscribed"]).one()
    subscriptions.unsubscribe(subscriptions.unsubscribe_url(row).rsplit("/", 1)[1], origin)
    subscriptions.subscribe(addresses["unsubscribed"], "", origin, "bench")  # pending again, confirmation sent
    suppress(addresses["suppressed"], "bounced")
    db.session.commit()
    return addresses


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    with tempfile.TemporaryDirectory() as folder:
        os.environ["INSTANCE_PATH"] = folder
        from newsletter import create_app
        from newsletter.core.extensions import db
        from newsletter.mail.suppression import suppress
        from newsletter.readers import subscriptions

        url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{folder}/bench.sqlite"
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TESTING": True, "WTF_CSRF_ENABLED": False,
                          "RATELIMIT_ENABLED": True, "BASE_URL": "https://news.example.org"})
        with app.app_context():
            db.drop_all()
            db.create_all()
            addresses = _known_addresses(db, subscriptions, suppress)
        client = app.test_client()
        timings: dict[str, list[float]] = {"unknown": [], **{state: [] for state in addresses}}
        posts = 0
        for number in range(rounds + 5):
            for state in timings:
                address = f"new{number}@example.org" if state == "unknown" else addresses[state]
                started = time.perf_counter()
                posts += 1  # each post from its own IP: the limit per IP never answers 429 here
                ip = f"10.{posts // 65536 % 256}.{posts // 256 % 256}.{posts % 256}"
                response = client.post("/subscribe", data={"email": address}, environ_base={"REMOTE_ADDR": ip})
                elapsed = time.perf_counter() - started
                response.close()  # the hand-off to the broker, after the answer
                assert response.status_code == 200, response.status_code
                if number >= 5:  # the first rounds warm up caches
                    timings[state].append(elapsed)
        with app.app_context():
            db.drop_all()
    unknown = statistics.median(timings["unknown"])
    for state, values in timings.items():
        median = statistics.median(values)
        print(f"{state:>13}: median {median * 1000:6.1f} ms   known/unknown {median / unknown:.2f}")
    known = statistics.median([value for state, values in timings.items() if state != "unknown" for value in values])
    print(f"ratio of medians, all known / unknown: {known / unknown:.2f}")


if __name__ == "__main__":
    main()
