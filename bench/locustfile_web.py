"""Locust users for bench/web.py: one endpoint per run, chosen by BENCH_TARGET.

bare       GET /bench/bare  (the baseline: a Flask view that returns two bytes)
home       GET /
subscribe  POST /subscribe  (a new address each time)
contact    POST /contact    (a new inquirer each time)

BENCH_RATE=N makes each user send one request per second (N users: N requests/s, an open-ish fixed
arrival rate while answers take under a second); without it users send as fast as answers come.
Every signup or inquiry answered with its thank-you page is appended to BENCH_ACCEPTED, one address a
line, so bench/web.py can check that each one is in the database with its mail queued.
"""
from __future__ import annotations

import os
import random
import re
import uuid

import gevent
from locust import FastHttpUser, constant_throughput, task

TARGET = os.environ.get("BENCH_TARGET", "home")
ACCEPTED = open(os.environ["BENCH_ACCEPTED"], "a", buffering=1) if os.environ.get("BENCH_ACCEPTED") else None
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
THANKS = {"subscribe": "inbox", "contact": "arrived"}


def _csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    return (found.group(1) or found.group(2)) if found else ""


class Visitor(FastHttpUser):
    """geventhttpclient, not requests: at 50 requests/s python-requests alone added ~35 ms to every answer."""

    if os.environ.get("BENCH_RATE"):
        wait_time = constant_throughput(1)

    def on_start(self) -> None:
        if os.environ.get("BENCH_RATE"):
            # Locust starts the users together; without a random phase all of them would send in the same
            # instant every second (a burst of N, not N spread over the second).
            gevent.sleep(random.random())
        # A real visitor loads the form first: that gives the session cookie and the CSRF token.
        self.token = ""
        if TARGET in THANKS:
            self.token = _csrf_token(self.client.get(f"/{TARGET}", name="form (setup)").text)

    @task
    def hit(self) -> None:
        if TARGET == "bare":
            self.client.get("/bench/bare", name="bare")
        elif TARGET == "home":
            self.client.get("/", name="home")
        else:
            self._post()

    def _post(self) -> None:
        address = f"bench-{uuid.uuid4().hex}@example.org"
        if TARGET == "subscribe":
            data = {"email": address, "name": "Bench", "website": "", "csrf_token": self.token}
        else:
            data = {"name": "Bench Visitor", "email": address, "phone": "", "preferred_contact": "email",
                    "message": f"I would like to ask about couples sessions, reference {uuid.uuid4().hex[:8]}.",
                    "website": "", "csrf_token": self.token}
        with self.client.post(f"/{TARGET}", data=data, name=TARGET, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif ACCEPTED is not None:
                ACCEPTED.write(address + "\n")
