"""Every mail the product sends, checked as the reader's mail program will see it.

Each template in templates/emails/ is rendered with a realistic context (SAMPLES), the issue from the
therapist's sample article, all with CSS inlined as sent. Then:
- the caniemail data (@jsx-email/doiuse-email, tests/js/doiuse.mjs) for Gmail, Outlook, Apple Mail and
  Yahoo: any error fails unless KNOWN_FALLBACKS says why that feature is safe to lack;
- axe-core in Chromium, light and dark, 375 px wide: contrast and the other rules, no sideways scroll;
- the Nu HTML checker (vnu.jar from npm's vnu-jar, run with Java): any error fails. Its warnings do not: they are
  the table attributes (width, cellpadding, bgcolor, align...) that HTML calls obsolete and Outlook for Windows
  needs, since it ignores the same CSS.

A new mail gets checked on its own once it has an entry in SAMPLES; without one the test says so.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import sample_mails
from tests.support import ROOT, vnu_errors

EMAILS = ROOT / "templates" / "emails"
NODE_MODULES = ROOT / "node_modules"
DOIUSE = ROOT / "tests" / "js" / "doiuse.mjs"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"

# caniemail errors that are fine, each with the reason. A key is the feature as doiuse-email names it.
KNOWN_FALLBACKS = {
    "@media": "Only the dark-mode colours live there (one width serves phones and desktops); a client without "
              "media queries shows the light layout, which is what Outlook for Windows shows anyway.",
    "<body> element": "Every HTML document has one; clients that drop <body> lose its background only, and the "
                      "outer table carries bgcolor.",
    "role attribute": "role=presentation on the layout tables tells screen readers they are not data; a client "
                      "that drops the attribute shows the same table.",
}
# Outlook's errors per transactional mail stay under this: the fallbacks above, a few times each.
OUTLOOK_ERRORS_MAX = 9
_ERROR = re.compile(r"^`(?P<feature>.+?)` is not supported by `(?P<client>[^`]+)`$")

# axe rules about web pages, not mails: a mail has no landmarks to navigate by, and a short note
# (the acknowledgement) opens with its greeting; its subject line is its heading.
AXE_RULES_OFF = {
    "region": {"enabled": False},
    "landmark-one-main": {"enabled": False},
    "page-has-heading-one": {"enabled": False},
}


@pytest.fixture
def mail_app(app):
    """The app, once: what a mail looks like does not depend on the database behind it."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("checked on SQLite; rendering is the same on PostgreSQL")
    with app.test_request_context():
        yield app


def sent_mails(tmp_path: Path) -> dict[str, Path]:
    """Every HTML mail as sent, written to tmp_path: {"confirm-1": path, ..., "issue-1": path}."""
    rendered = {}
    for name, (_, mail) in sample_mails().items():
        path = tmp_path / f"{name}.html"
        path.write_text(mail.html, encoding="utf-8")
        rendered[name] = path
    return rendered


def caniemail_errors(paths: list[Path]) -> dict[str, list[str]]:
    """doiuse-email's errors per file (its stem), run once for all files."""
    if not (NODE_MODULES / "@jsx-email" / "doiuse-email").is_dir():
        pytest.fail("node_modules is missing: run `npm ci` (scripts/test.sh does it)")
    node = shutil.which("node")
    assert node, "node (20 or later) is needed for the mail checks"
    result = subprocess.run([node, str(DOIUSE), *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return {Path(file).stem: report["errors"] for file, report in json.loads(result.stdout).items()}


def unexplained(errors: list[str]) -> list[str]:
    """The errors no KNOWN_FALLBACKS entry explains."""
    left = []
    for error in errors:
        match = _ERROR.match(error)
        if not match or match["feature"] not in KNOWN_FALLBACKS:
            left.append(error)
    return sorted(set(left))


def test_every_mail_is_supported_by_gmail_outlook_apple_mail_and_yahoo(mail_app, tmp_path):
    mails = sent_mails(tmp_path)
    errors = caniemail_errors(list(mails.values()))

    assert set(errors) == set(mails)
    problems = {name: unexplained(found) for name, found in errors.items() if unexplained(found)}
    assert not problems, f"Features these mail programs lack (fix, or explain in KNOWN_FALLBACKS): {problems}"
    seen = {match["feature"] for found in errors.values() for match in map(_ERROR.match, found) if match}
    assert set(KNOWN_FALLBACKS) <= seen, f"KNOWN_FALLBACKS no mail needs any more: {set(KNOWN_FALLBACKS) - seen}"
    outlook = {name: sum("`outlook." in error for error in found) for name, found in errors.items()
               if not name.startswith("issue-")}
    assert max(outlook.values()) <= OUTLOOK_ERRORS_MAX, f"Outlook errors per mail: {outlook}"


def test_every_mail_is_a_whole_html_document_with_a_doctype(mail_app, tmp_path):
    starts = {name: path.read_text(encoding="utf-8")[:30] for name, path in sent_mails(tmp_path).items()}

    assert {name for name, start in starts.items() if not start.startswith("<!doctype html>\n<html")} == set()


def test_every_mail_is_valid_html_for_the_nu_html_checker(mail_app, tmp_path):
    mails = sent_mails(tmp_path)
    errors = vnu_errors(list(mails.values()))

    problems = {name: found for name, found in errors.items() if found}
    assert not problems, f"The Nu HTML checker's errors: {problems}"


def test_the_nu_html_checker_catches_a_misnested_tag(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>x</title></head>'
                      "<body><p><table><tr><td>Hi</td></tr></table></p></body></html>")

    assert vnu_errors([broken])["broken"] == ["line 1: No “p” element in scope but a “p” end tag seen."]


def test_the_caniemail_check_catches_an_unsupported_feature(tmp_path):
    flex = tmp_path / "flex.html"
    flex.write_text('<html><body><div style="display: flex; background-image: url(x.png)">Hi</div></body></html>')

    left = unexplained(caniemail_errors([flex])["flex"])

    assert any("display:flex" in error and "outlook.windows" in error for error in left), left


@pytest.fixture
def phone(browser):
    """Open a 375 px wide page in a colour scheme: `phone("dark")`; all closed after the test."""
    contexts = []

    def open_page(scheme: str):
        contexts.append(browser.new_context(viewport={"width": 375, "height": 800}, color_scheme=scheme))
        return contexts[-1].new_page()

    yield open_page
    for context in contexts:
        context.close()


def axe_violations(page, html: str) -> tuple[list[dict], int]:
    """axe-core's violations for `html` shown in `page`, and the page's scroll width."""
    page.set_content(html)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("rules => axe.run(document, {rules}).then(r => r.violations)", AXE_RULES_OFF)
    width = page.evaluate("document.documentElement.scrollWidth")
    return [{"rule": v["id"], "help": v["help"], "where": [n["target"] for n in v["nodes"]][:3]}
            for v in violations], width


def test_every_mail_passes_axe_in_light_and_dark_mode_at_phone_width(mail_app, phone, tmp_path):
    mails = sent_mails(tmp_path)
    problems = {}
    for scheme in ("light", "dark"):
        page = phone(scheme)
        for name, path in mails.items():
            violations, width = axe_violations(page, path.read_text(encoding="utf-8"))
            if violations:
                problems[f"{name} ({scheme})"] = violations
            if width > 375:
                problems[f"{name} ({scheme}) scrolls sideways"] = width

    assert not problems, problems


def test_the_axe_check_catches_low_contrast(phone):
    pale = '<html lang="en"><head><title>x</title></head><body><p style="color:#aaaaaa;background:#ffffff">Pale words</p></body></html>'

    violations, _ = axe_violations(phone("light"), pale)

    assert [v["rule"] for v in violations] == ["color-contrast"]
