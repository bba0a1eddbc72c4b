"""Every public page the app serves (every GET route outside /admin, /webhooks and /static, with real rows and live
tokens from tests/routes.py) is valid HTML for the Nu HTML checker, the W3C's validator: no errors. A new public
route is checked as soon as it exists."""
from __future__ import annotations

import re

import pytest

from tests.routes import make_rows, url_for_rule
from tests.support import vnu_errors

NOT_PUBLIC = ("/admin", "/webhooks", "/static")


@pytest.fixture
def pages_app(app):
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("checked on SQLite; the HTML of a page does not depend on the database behind it")
    return app


def public_pages(app, tmp_path) -> dict[str, str]:
    """Every public HTML page written to a file: {file stem: URL}."""
    rows = make_rows(app)
    client, pages = app.test_client(), {}
    rules = [rule for rule in app.url_map.iter_rules()
             if "GET" in rule.methods and not rule.rule.startswith(NOT_PUBLIC)]
    for rule in sorted(rules, key=lambda rule: rule.rule):
        url = url_for_rule(rule, rows)
        response = client.get(url)
        if response.status_code == 200 and response.mimetype == "text/html":
            stem = re.sub(r"[^a-z0-9]+", "-", rule.rule.lower()).strip("-") or "home"
            (tmp_path / f"{stem}.html").write_bytes(response.data)
            pages[stem] = url
    return pages


def test_every_public_page_is_valid_html_for_the_nu_html_checker(pages_app, tmp_path):
    pages = public_pages(pages_app, tmp_path)
    errors = vnu_errors([tmp_path / f"{stem}.html" for stem in pages])

    assert {"home", "subscribe", "contact", "unsubscribe-token"} <= set(pages), pages
    problems = {pages[stem]: found for stem, found in errors.items() if found}
    assert not problems, f"The Nu HTML checker's errors: {problems}"
