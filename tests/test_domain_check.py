"""The sender-domain check against a real DNS server on 127.0.0.1 (dnslib), never the internet."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.core.config import ConfigError, dns_server
from newsletter.deliverability import domain_check
from newsletter.deliverability.domain_check import FAIL, PASS, UNKNOWN
from tests.support import change_settings, settings_of


@pytest.fixture
def config(zone, dkim_key) -> dict:
    return {
        "MAIL_FROM": "Inner Calm Counseling <newsletter@example.org>",
        "PRACTICE_INBOX": "hello@example.org",
        "SMTP_HOST": "smtp.mailgun.org",
        "DKIM_DOMAIN": "example.org",
        "DKIM_SELECTOR": "news",
        "DKIM_PRIVATE_KEY": dkim_key[0],
        "DNS_RESOLVER": zone.address,
    }


@pytest.fixture
def check(config):
    """Run the check with the app context it needs (the envelope sender comes from MAIL_FROM)."""
    flask_app = Flask(__name__)

    def run(**overrides) -> domain_check.Report:
        flask_app.extensions["settings"] = settings_of({**config, **overrides})
        with flask_app.app_context():
            return domain_check.check(flask_app.extensions["settings"], timeout=0.5)

    return run


def test_a_domain_with_every_record_right_passes(check):
    report = check()

    assert report.domain == "example.org"
    assert [(f.check, f.status) for f in report.findings] == [
        ("SPF", PASS), ("DKIM", PASS), ("DMARC", PASS), ("MX", PASS)]
    assert report.passed and not any(f.publish for f in report.findings)
    assert "mailgun.org" in report.finding("SPF").message
    assert report.finding("MX").message == "Mail to example.org goes to mxa.mailgun.org, mxb.mailgun.org."


def test_missing_records_each_say_exactly_what_to_publish(check, zone, dkim_key):
    zone.records.clear()
    zone.set("www.example.org", "TXT", "unrelated")

    report = check()

    assert [f.status for f in report.findings] == [FAIL] * 4 and not report.passed
    assert str(report.finding("SPF").publish) == "Publish this TXT record at example.org: v=spf1 include:mailgun.org ~all"
    assert str(report.finding("DKIM").publish) == (
        f"Publish this TXT record at news._domainkey.example.org: v=DKIM1; k=rsa; p={dkim_key[1]}")
    assert str(report.finding("DMARC").publish) == (
        "Publish this TXT record at _dmarc.example.org: v=DMARC1; p=none; rua=mailto:hello@example.org")
    assert "no MX record" in report.finding("MX").message


def test_the_suggested_records_pass_once_published(check, zone):
    zone.records.clear()
    for finding in check().findings:
        if finding.publish:
            zone.set(finding.publish.name, finding.publish.type, finding.publish.value)
    zone.set("example.org", "MX", "10 mail.example.org")

    assert check().passed


def test_a_dkim_record_with_another_key_fails_and_shows_the_right_one(check, zone, dkim_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    zone.set("news._domainkey.example.org", "TXT", f"v=DKIM1; k=rsa; p={base64.b64encode(other).decode()}")

    finding = check().finding("DKIM")

    assert finding.status == FAIL and "not the one your mail is signed with" in finding.message
    assert finding.publish.value.endswith(f"p={dkim_key[1]}")


def test_a_dkim_key_published_as_a_bare_rsa_public_key_matches(check, zone, dkim_key):
    public = serialization.load_pem_private_key(dkim_key[0].encode(), None).public_key()
    pkcs1 = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    zone.set("news._domainkey.example.org", "TXT", f"v=DKIM1; p={base64.b64encode(pkcs1).decode()}")

    assert check().finding("DKIM").status == PASS


def test_without_dkim_settings_it_says_how_to_start_signing(check):
    finding = check(DKIM_PRIVATE_KEY="").finding("DKIM")

    assert finding.status == FAIL and "DKIM_PRIVATE_KEY" in finding.message and finding.publish is None


def test_an_unreadable_private_key_is_reported_not_crashed_on(check):
    finding = check(DKIM_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----").finding("DKIM")

    assert finding.status == FAIL and "could not be read" in finding.message


def test_signing_for_another_domain_is_misaligned(check, zone, dkim_key):
    zone.set("news._domainkey.mailgun-customer.net", "TXT", f"v=DKIM1; k=rsa; p={dkim_key[1]}")

    report = check(DKIM_DOMAIN="mailgun-customer.net")

    assert report.finding("DKIM").status == PASS
    dmarc = report.finding("DMARC")
    assert dmarc.status == FAIL
    assert "signed for mailgun-customer.net (DKIM_DOMAIN) but sent from example.org" in dmarc.message


def test_a_subdomain_aligns_relaxed_but_not_strict(check, zone, dkim_key):
    zone.set("news._domainkey.mail.example.org", "TXT", f"v=DKIM1; k=rsa; p={dkim_key[1]}")

    assert check(DKIM_DOMAIN="mail.example.org").finding("DMARC").status == PASS
    zone.set("_dmarc.example.org", "TXT", "v=DMARC1; p=reject; adkim=s")
    assert check(DKIM_DOMAIN="mail.example.org").finding("DMARC").status == FAIL


def test_a_return_path_on_another_domain_is_misaligned(config, zone):
    lookup = domain_check.Lookup(zone.address, 0.5)

    bounces_elsewhere = domain_check.check_dmarc(lookup, "example.org", settings_of(config), "bounces.mailgun.org")
    bounces_at_home = domain_check.check_dmarc(lookup, "example.org", settings_of(config), "bounces.example.org")

    assert bounces_elsewhere.status == FAIL
    assert "bounces go to bounces.mailgun.org (the return path) but mail is sent from example.org" in bounces_elsewhere.message
    assert bounces_at_home.status == PASS


def test_two_spf_records_fail_and_the_fix_merges_them(check, zone):
    zone.set("example.org", "TXT", "v=spf1 include:_spf.google.com ~all", "v=spf1 include:mailgun.org -all")

    finding = check().finding("SPF")

    assert finding.status == FAIL and "2 SPF records" in finding.message
    assert finding.publish.value == "v=spf1 include:_spf.google.com include:mailgun.org ~all"


@pytest.mark.parametrize("record, problem", [
    ("v=spf1 include:mailgun.org ?all", "does not end in ~all or -all"),
    ("v=spf1 include:mailgun.org +all", "does not end in ~all or -all"),
    ("v=spf1 include:_spf.google.com ~all", "doesn't mention mailgun.org"),
])
def test_a_weak_or_incomplete_spf_record_fails(check, zone, record, problem):
    zone.set("example.org", "TXT", record)

    finding = check().finding("SPF")

    assert finding.status == FAIL and problem in finding.message and "include:mailgun.org ~all" in finding.publish.value


def test_a_local_relay_is_not_asked_for(check, zone):
    zone.set("example.org", "TXT", "v=spf1 mx -all")

    assert check(SMTP_HOST="localhost").finding("SPF").status == PASS
    assert check(SMTP_HOST="127.0.0.1").finding("SPF").status == PASS


def test_a_dmarc_record_without_a_policy_or_twice_fails(check, zone):
    zone.set("_dmarc.example.org", "TXT", "v=DMARC1; rua=mailto:hello@example.org")
    assert "no policy" in check().finding("DMARC").message

    zone.set("_dmarc.example.org", "TXT", "v=DMARC1; p=none", "v=DMARC1; p=reject")
    assert "2 DMARC records" in check().finding("DMARC").message


def test_a_dns_server_that_does_not_answer_gives_not_checked_and_is_asked_once(check, zone):
    zone.silent.add("news._domainkey.example.org")

    report = check()

    assert [f.status for f in report.findings] == [PASS, UNKNOWN, UNKNOWN, UNKNOWN]
    assert "did not answer in time" in report.finding("DMARC").message and not report.passed
    asked = zone.queries
    zone.silent.add("example.org")
    assert [f.status for f in check().findings] == [UNKNOWN] * 4
    assert zone.queries - asked <= 3, "after a timeout the other lookups are not tried"


def test_results_are_cached_until_checked_again(config, zone):
    flask_app = Flask(__name__)
    flask_app.extensions["settings"] = checked = settings_of(config)
    with flask_app.app_context():
        first = domain_check.report(checked, timeout=0.5)
        zone.records.clear()
        asked = zone.queries
        assert domain_check.report(checked, timeout=0.5) is first and zone.queries == asked
        assert not domain_check.report(checked, refresh=True, timeout=0.5).passed


txt_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=300)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spf=txt_text, dkim=txt_text, dmarc=txt_text)
def test_whatever_the_records_say_the_check_answers_in_words(check, zone, spf, dkim, dmarc):
    zone.set("example.org", "TXT", "v=spf1 " + spf)
    zone.set("news._domainkey.example.org", "TXT", dkim)
    zone.set("_dmarc.example.org", "TXT", "v=DMARC1; " + dmarc)

    report = check()

    assert all(f.status in {PASS, FAIL} and f.message for f in report.findings)


def test_the_test_server_is_the_one_asked(zone):
    """Nothing here reaches the internet: the resolver asks only the local server."""
    lookup = domain_check.Lookup(zone.address, 0.5)
    assert lookup.resolver.nameservers == ["127.0.0.1"] and lookup.mx("example.org")
    with pytest.raises(domain_check.Unanswered):
        zone.silent.add("example.org")
        lookup.txt("example.org")


@pytest.fixture
def sender_admin(app, admin_client, config):
    """A client signed in as the therapist, the app set to send from example.org via the test DNS."""
    change_settings(app, **config)
    return admin_client


def test_the_admin_page_shows_the_record_to_publish_and_checks_again(sender_admin, zone):
    del zone.records[("_dmarc.example.org", "TXT")]

    page = sender_admin.get("/admin/sender-domain").get_data(as_text=True)
    assert "Sender domain: example.org" in page and "Some records need attention" in page
    assert "Publish this TXT record at <strong>_dmarc.example.org</strong>" in page
    assert "v=DMARC1; p=none; rua=mailto:hello@example.org</textarea>" in page
    assert page.count("passes</span>") == 3

    zone.set("_dmarc.example.org", "TXT", "v=DMARC1; p=none; rua=mailto:hello@example.org")
    assert "Some records need attention" in sender_admin.get("/admin/sender-domain").get_data(as_text=True), "cached"
    response = sender_admin.post("/admin/sender-domain")
    assert response.status_code == 302
    page = sender_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Everything passes" in page and "<textarea" not in page


def test_the_admin_nav_links_the_page_and_strangers_are_sent_to_sign_in(sender_admin, app):
    assert 'href="/admin/sender-domain"' in sender_admin.get("/admin/").get_data(as_text=True)
    stranger = app.test_client().get("/admin/sender-domain")
    assert stranger.status_code == 302 and "/admin/login" in stranger.headers["Location"]


def test_the_page_fits_a_phone_and_check_again_shows_a_fixed_record(sender_admin, zone, live_server, admin_page):
    page = admin_page
    zone.records.clear()
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_server}/admin/sender-domain")

    assert page.locator("textarea").count() == 3  # SPF, DKIM and DMARC records to copy
    assert page.locator("html").evaluate("html => html.scrollWidth <= html.clientWidth")  # no sideways scrolling
    zone.set("example.org", "MX", "10 mxa.mailgun.org")
    page.get_by_role("button", name="Check again").click()
    assert page.get_by_text("Mail to example.org goes to mxa.mailgun.org.").is_visible()


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("[::1]:5300", ("::1", 5300)),
    ("::1", ("::1", 53)),
])
def test_dns_resolver_takes_an_address_and_a_port(value, expected):
    assert dns_server(value) == expected


@pytest.mark.parametrize("value", ["dns.example.org", "127.0.0.1:0", "127.0.0.1:99999", "1.2.3.4:x", "[::1"])
def test_a_dns_resolver_that_is_not_an_address_stops_the_app_with_a_clear_message(value, tmp_path, monkeypatch):
    from newsletter import create_app

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="DNS_RESOLVER must be a DNS server's IP address"):
        create_app({"DNS_RESOLVER": value})
