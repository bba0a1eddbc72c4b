"""Every kind of mail as the spam filters of receiving servers score it, with the software they run:

- SpamAssassin (`spamd --local`, asked with `spamc`: local tests only, no DNS, no network): a score of 0 or less;
- rspamd, started here with a temporary configuration and no reachable DNS: its content score, the symbols that
  depend on neither DNS nor the sending IP, 0.5 or less;
- Perl's Mail::DKIM (tests/perl/dkim_verify.pl): the app's DKIM signature verifies against the key record that the
  tests' local DNS server publishes.

Each mail is rendered from the sample contexts of tests/helpers.py `mail_samples()` (the same the caniemail and
axe checks use) and built with the headers the app gives it: the forward From the practice inbox with Reply-To the
inquirer, the newsletter's List-Unsubscribe, and so on. scripts/test.sh installs them (Debian packages);
under CI=true a missing one fails, elsewhere the test skips and says which is missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests

from newsletter.inquiries import composing
from newsletter.mail import compose
from newsletter.readers import personalize
from tests.helpers import sample_mails
from tests.support import ROOT, free_port, missing_tool, required_program

SPAMASSASSIN_MAX = 0.0
RSPAMD_CONTENT_MAX = 0.5
DKIM_VERIFY = ROOT / "tests" / "perl" / "dkim_verify.pl"
# rspamd's groups whose symbols come from DNS, the sending IP or its hostname, or signatures the relay adds: a
# test machine without DNS cannot score them, and they say nothing about what the app writes.
RSPAMD_NETWORK_GROUPS = ["hfilter", "rbl", "spf", "dkim", "dmarc", "arc", "surbl", "fuzzy", "policies", "mx",
                         "asn", "phishing", "dnswl", "upstream_spam_filters", "whitelist", "reputation"]
# Symbols outside those groups that still only look at DNS or the connection, never at the message.
RSPAMD_NETWORK_SYMBOLS = {"RCVD_COUNT_ZERO", "ONCE_RECEIVED", "RCVD_NO_TLS_LAST", "DMARC_DNSFAIL", "R_SPF_DNSFAIL",
                          "R_DKIM_NA", "ARC_NA", "DMARC_NA", "R_SPF_NA", "ASN", "RECEIVED_SPAMHAUS_PBL"}
RSPAMD_CONFIG = """\
.include "$CONFDIR/common.conf"
options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    dns {{ nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 1; }}
    hs_cache_dir = "{hs_cache}";
}}
logging {{ type = "file"; filename = "$LOGDIR/rspamd.log"; level = "error"; }}
worker "normal" {{
    bind_socket = "127.0.0.1:{port}";
    .include "$CONFDIR/worker-normal.inc"
    count = 1;
}}
"""


@pytest.fixture(scope="session")
def rspamd(tmp_path_factory):
    """A running rspamd (its normal worker's URL) with a configuration of its own and DNS pointed nowhere."""
    program = required_program("rspamd", "rspamd")
    home = tmp_path_factory.mktemp("rspamd")
    # Compiled Hyperscan patterns take half a minute to build; they are kept between runs, keyed by rspamd itself.
    hs_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsletter-tests" / "rspamd-hs"
    hs_cache.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (home / "rspamd.conf").write_text(RSPAMD_CONFIG.format(port=port, hs_cache=hs_cache))
    variables = [f"--var={name}={home}" for name in ("LOCAL_CONFDIR", "RUNDIR", "DBDIR", "LOGDIR")]
    process = subprocess.Popen([program, "-f", "-i", "-c", str(home / "rspamd.conf"), *variables],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_scanning(url, process, home / "rspamd.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_scanning(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rspamd stopped ({process.returncode}): {log.read_text()[-2000:] if log.exists() else ''}")
        try:
            if requests.get(f"{url}/ping", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"rspamd did not answer within {timeout:.0f} s")


@pytest.fixture(scope="session")
def spamassassin(tmp_path_factory):
    """The command that scores a message on its input with SpamAssassin's local tests: `spamc`, talking to a
    `spamd --local` (no user preferences) started here once. Loading the rules is most of what `spamassassin -L`
    takes, a second and more per mail; spamd loads them once."""
    spamd, spamc = required_program("spamd", "spamd"), required_program("spamc", "spamc")
    port = free_port()
    log = tmp_path_factory.mktemp("spamassassin") / "spamd.log"
    process = subprocess.Popen([spamd, "--local", "--nouser-config", "-i", "127.0.0.1", "-p", str(port),
                                "--max-children=2", "--syslog=stderr"],
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    # -x: a message spamd could not score is an error, never passed through unscored.
    command = [spamc, "-d", "127.0.0.1", "-p", str(port), "-x", "-s", str(10 * 2**20)]
    try:
        _wait_until_answering(command, process, log)
        yield command
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_answering(command: list[str], process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"spamd stopped ({process.returncode}): {log.read_text()[-2000:]}")
        if subprocess.run([*command, "-K"], capture_output=True).returncode == 0:
            return
        time.sleep(0.25)
    pytest.fail(f"spamd did not answer within {timeout:.0f} s")


def _as_sent(name: str, context: dict, mail: compose.RenderedMail) -> tuple[bytes, str, str]:
    """The message as the app sends this mail (bytes), its envelope sender and its recipient."""
    sender, inbox = compose.sender(), compose.practice_inbox()
    kind = name.rsplit("-", 1)[0]
    reply_to, headers = None, {}
    inquiry, reader = context.get("inquiry"), context.get("subscriber")
    if kind == "inquiry_reply":  # threaded under the acknowledgement, as inquiries/pipeline.py does
        headers = {"In-Reply-To": "<ack-42@example.org>", "References": "<ack-42@example.org>"}
    if kind in ("inquiry_forward", "inquiry_notice"):
        from_, to, reply_to = composing.forward_sender(), inbox, compose.Mailbox(inquiry.email, inquiry.name)
    elif inquiry is not None and not context.get("for_practice"):
        from_, to, reply_to = composing.sender_for(inquiry), compose.Mailbox(inquiry.email, inquiry.name), inbox
    elif reader is not None or kind == "issue":
        from_ = sender
        to = compose.Mailbox(reader.email, reader.name) if reader else compose.Mailbox("maya.lopez@example.com", "Maya")
        if "unsubscribe_url" in context:
            headers = personalize.list_headers(context["unsubscribe_url"])
    else:  # the practice's own reports and notices
        from_, to = sender, inbox
    message = compose.build_message(to=to, subject=mail.subject, text=mail.text, html=mail.html, from_=from_,
                                    reply_to=reply_to, headers=headers)
    return message.as_bytes(policy=policy.SMTP), compose.envelope_sender(), to.address


# A practice as deployed: its own domain (a real top-level domain: filters score links to .test as suspicious),
# and inquirers and readers on others.
PRACTICE_SETTINGS = {"BASE_URL": "https://www.example.org", "MAIL_FROM": "Inner Calm Counseling <newsletter@example.org>",
                     "PRACTICE_INBOX": "practice@example.org", "LIST_ID": "newsletter.example.org"}


@pytest.fixture
def mails(app_factory, settings):
    """Every sample mail as sent: {"confirm-1": (bytes, envelope sender, recipient), ...}."""
    return _every_mail(app_factory, settings)


@pytest.fixture
def signed_mails(app_factory, settings, zone, dkim_key, tmp_path):
    """Every sample mail as sent, signed with the practice's DKIM key (example.org, selector news, whose record
    the local DNS server `zone` publishes), each in a file: {"confirm-1": path, ...}."""
    dkim = {"DKIM_DOMAIN": "example.org", "DKIM_SELECTOR": "news", "DKIM_PRIVATE_KEY": dkim_key[0]}
    sent = _every_mail(app_factory, settings, sign=True, **dkim)
    for name, (message, _, _) in sent.items():
        (tmp_path / f"{name}.eml").write_bytes(message)
    return {name: tmp_path / f"{name}.eml" for name in sent}


def _every_mail(app_factory, settings, sign: bool = False, **overrides) -> dict[str, tuple[bytes, str, str]]:
    if settings["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("checked on SQLite; what a mail says does not depend on the database behind it")
    app = app_factory(**PRACTICE_SETTINGS, **overrides)
    with app.test_request_context():
        sent = {name: _as_sent(name, context, mail) for name, (context, mail) in sample_mails().items()}
        if sign:  # as newsletter/mail/outgoing.py and the issue sender do, just before SMTP
            sent = {name: (compose.dkim_sign(message, app.extensions["settings"]), *rest)
                    for name, (message, *rest) in sent.items()}
    return sent


def spamassassin_score(command: list[str], message: bytes) -> tuple[float, str]:
    """SpamAssassin's score and the rules that fired, from its X-Spam-Status header."""
    result = subprocess.run(command, input=message, capture_output=True, timeout=120, check=True)
    status = " ".join(message_from_bytes(result.stdout)["X-Spam-Status"].split())
    score = float(status.split("score=", 1)[1].split()[0])
    return score, status.split("tests=", 1)[-1].split(" autolearn", 1)[0]


def rspamd_content_score(url: str, message: bytes, envelope_from: str, recipient: str) -> tuple[float, dict]:
    """rspamd's score over the symbols that depend on neither DNS nor the sending IP, and those symbols."""
    settings = json.dumps({"groups_disabled": RSPAMD_NETWORK_GROUPS})
    response = requests.post(f"{url}/checkv2", data=message, timeout=60, headers={
        "From": envelope_from, "Rcpt": recipient, "Settings": settings, "Pass": "none"})
    response.raise_for_status()
    symbols = {name: round(symbol["score"], 2) for name, symbol in response.json()["symbols"].items()
               if name not in RSPAMD_NETWORK_SYMBOLS and symbol["score"]}
    return round(sum(symbols.values()), 2), symbols


def test_every_mail_passes_spamassassin_local_tests(mails, spamassassin):
    scores = {name: spamassassin_score(spamassassin, message) for name, (message, _, _) in mails.items()}

    too_high = {name: found for name, found in scores.items() if found[0] > SPAMASSASSIN_MAX}
    assert not too_high, f"SpamAssassin scores above {SPAMASSASSIN_MAX}: {too_high}"


def test_every_mail_passes_rspamd_content_checks(mails, rspamd):
    scores = {name: rspamd_content_score(rspamd, *sent) for name, sent in mails.items()}

    too_high = {name: found for name, found in scores.items() if found[0] > RSPAMD_CONTENT_MAX}
    assert not too_high, f"rspamd content scores above {RSPAMD_CONTENT_MAX}: {too_high}"


def dkim_results(dns_server: str, paths: list[Path]) -> dict[str, str]:
    """Mail::DKIM's verdict on each message file (its stem): "pass", or the result and its reason."""
    perl = required_program("perl", "perl")
    if subprocess.run([perl, "-MMail::DKIM::Verifier", "-e", "1"], capture_output=True).returncode != 0:
        missing_tool("Perl's Mail::DKIM is not installed (scripts/test.sh installs Debian's libmail-dkim-perl)")
    result = subprocess.run([perl, str(DKIM_VERIFY), dns_server, *map(str, paths)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    verdicts = (line.split("\t") for line in result.stdout.splitlines())
    return {Path(file).stem: detail for file, _, detail in verdicts}


def test_every_mail_passes_dkim_verification_by_mail_dkim(signed_mails, zone):
    results = dkim_results(zone.address, list(signed_mails.values()))

    assert set(results) == set(signed_mails)
    failed = {name: result for name, result in results.items() if result != "pass"}
    assert not failed, f"Mail::DKIM did not verify: {failed}"


def test_mail_dkim_catches_a_changed_body(signed_mails, zone, tmp_path):
    message = signed_mails["confirm-1"].read_bytes()
    changed = tmp_path / "changed.eml"
    changed.write_bytes(message.replace(b"\r\n\r\n", b"\r\n\r\nP.S. Click here.\r\n", 1))

    assert dkim_results(zone.address, [changed]) == {"changed": "fail (body has been altered)"}


def test_the_filters_catch_an_invisible_preheader_and_a_reply_to_spoof(app, spamassassin, rspamd):
    with app.test_request_context():
        hidden = ('<!doctype html><html><body><div style="display:none;font-size:0;max-height:0;overflow:hidden">'
                  + "Read this &#847;&zwnj;&nbsp;" * 40 + "</div><p>Hello</p><p>Hello again, a second paragraph."
                  "</p></body></html>")
        spoof = compose.build_message(
            to=compose.Mailbox("practice@newsletter.test"), subject="New inquiry", text="Hello\n", html=hidden,
            from_=compose.Mailbox("newsletter@newsletter.test"), reply_to=compose.Mailbox("someone@example.com"))
        message = spoof.as_bytes(policy=policy.SMTP)

    _, symbols = rspamd_content_score(rspamd, message, "newsletter@newsletter.test", "practice@newsletter.test")

    assert "SPOOF_REPLYTO" in symbols and "ZERO_FONT" in symbols, symbols
