"""Does the sender domain pass? SPF, DKIM, DMARC and MX for MAIL_FROM's domain, in plain words.

Gmail, Yahoo and Outlook.com turn away bulk mail without SPF, DKIM and an aligned DMARC record. This
looks the records up (dnspython; DNS_RESOLVER host:port picks the server, else the system's) and says
for each what passes, or the exact record to publish. Results are kept a few minutes per setting.
"""
from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import dns.exception
import dns.resolver
from cachetools import TTLCache
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.core.config import Settings, dns_server
from newsletter.mail import compose

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
CACHE_SECONDS = 300
TIMEOUT_SECONDS = 5.0
# Second-level labels under which registries hand out names (example.co.uk): a small stand-in for the
# public suffix list, enough to tell whether two names belong to the same organisation.
_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc"}

_cache: TTLCache = TTLCache(maxsize=16, ttl=CACHE_SECONDS)
_cache_lock = threading.Lock()


class Unanswered(Exception):
    """The DNS server did not answer (timeout, or every server failed)."""


class Record(NamedTuple):
    """A DNS record to publish: type, name and value, as a DNS host's form asks for them."""
    type: str
    name: str
    value: str

    def __str__(self) -> str:
        return f"Publish this {self.type} record at {self.name}: {self.value}"


@dataclass
class Finding:
    """One check: its status, what it means in plain words, and what to publish if anything."""
    check: str
    status: str
    message: str
    publish: Record | None = None


@dataclass
class Report:
    domain: str
    findings: list[Finding]
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def passed(self) -> bool:
        return all(finding.status == PASS for finding in self.findings)

    def finding(self, check: str) -> Finding:
        return next(finding for finding in self.findings if finding.check == check)


def report(config: Settings, *, refresh: bool = False, timeout: float = TIMEOUT_SECONDS) -> Report:
    """The sender-domain report for these settings, from the cache unless `refresh` or expired."""
    key = tuple(getattr(config, name) for name in ("mail_from", "smtp_host", "dkim_domain", "dkim_selector",
                                                    "dkim_private_key", "practice_inbox", "dns_resolver"))
    with _cache_lock:
        cached = None if refresh else _cache.get(key)
    if cached is not None:
        return cached
    fresh = check(config, timeout=timeout)
    with _cache_lock:
        _cache[key] = fresh
    return fresh


def check(config: Settings, *, timeout: float = TIMEOUT_SECONDS) -> Report:
    """Look the records up now. Needs an app context only for the envelope sender (compose.envelope_sender)."""
    lookup = Lookup(config.dns_resolver, timeout)
    from_domain = compose.domain_of(compose.Mailbox.parse(config.mail_from)).lower()
    return_path_domain = compose.envelope_sender().rpartition("@")[2].lower()
    findings = [
        _guard("SPF", lambda: check_spf(lookup, from_domain, relay_domain(config.smtp_host))),
        _guard("DKIM", lambda: check_dkim(lookup, config)),
        _guard("DMARC", lambda: check_dmarc(lookup, from_domain, config, return_path_domain)),
        _guard("MX", lambda: check_mx(lookup, from_domain)),
    ]
    return Report(domain=from_domain, findings=findings)


def _guard(name: str, run) -> Finding:
    try:
        return run()
    except Unanswered:
        return Finding(name, UNKNOWN, "The DNS server did not answer in time, so this could not be checked. "
                                      "Please check again in a few minutes.")


class Lookup:
    """TXT and MX lookups: a name that does not exist or has no such records gives []. After one
    timeout the rest are not tried, so a dead DNS server costs the page one timeout, not one per lookup."""

    def __init__(self, server: str, timeout: float):
        if server:
            host, port = dns_server(server)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host]
            self.resolver.port = port
        else:
            self.resolver = dns.resolver.Resolver()
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout
        self.unanswered = False

    def _answer(self, name: str, rdtype: str):
        if self.unanswered:
            raise Unanswered(name)
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            self.unanswered = True
            raise Unanswered(name) from exc

    def txt(self, name: str) -> list[str]:
        """Each TXT record's strings joined, as SPF, DKIM and DMARC read them."""
        return [b"".join(answer.strings).decode("utf-8", "replace") for answer in self._answer(name, "TXT")]

    def mx(self, name: str) -> list[str]:
        return [answer.exchange.to_text(omit_final_dot=True) for answer in self._answer(name, "MX")]


def organizational_domain(domain: str) -> str:
    """example.org for news.example.org, example.co.uk for headers.example.co.uk (an approximation)."""
    labels = domain.lower().rstrip(".").split(".")
    size = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-size:])


def relay_domain(smtp_host: str) -> str:
    """The organisation running SMTP_HOST (mailgun.org for smtp.mailgun.org); "" for none, local or an IP."""
    host = smtp_host.strip().lower().rstrip(".")
    if not host or "." not in host or host.endswith(".local") or host.replace(".", "").isdigit() or ":" in host:
        return ""
    return organizational_domain(host)


# -- SPF

def check_spf(lookup: Lookup, domain: str, relay: str) -> Finding:
    records = [txt for txt in lookup.txt(domain) if txt.lower().split(" ", 1)[0] == "v=spf1"]
    suggested = Record("TXT", domain, _spf_record(records, relay))
    if not records:
        return Finding("SPF", FAIL, f"{domain} has no SPF record, so receivers can't tell which servers may send "
                                    "its mail." + _relay_hint(relay), suggested)
    if len(records) > 1:
        return Finding("SPF", FAIL, f"{domain} has {len(records)} SPF records; receivers treat that as an error. "
                                    "Replace them with one record that lists everything they did.", suggested)
    terms = records[0].lower().split()
    if terms[-1] not in {"~all", "-all"}:
        return Finding("SPF", FAIL, f"The SPF record of {domain} does not end in ~all or -all, so it lets any "
                                    "server send as you. Change it to this.", suggested)
    if relay and relay not in records[0].lower():
        return Finding("SPF", FAIL, f"The SPF record of {domain} doesn't mention {relay}, the service that sends "
                                    "your mail (SMTP_HOST)." + _relay_hint(relay), suggested)
    return Finding("SPF", PASS, f"{domain} has one SPF record" + (f" that includes {relay}" if relay else "")
                   + f": {records[0]}")


def _spf_record(records: list[str], relay: str) -> str:
    """One record with every mechanism the existing ones name, the relay's include, ending in ~all."""
    terms: list[str] = []
    for record in records:
        for term in record.split()[1:]:
            if term.lower().lstrip("+-~?") != "all" and term not in terms:
                terms.append(term)
    if relay and not any(relay in term.lower() for term in terms):
        terms.append(f"include:{relay}")
    if not terms:
        terms.append("mx")
    return " ".join(["v=spf1", *terms, "~all"])


def _relay_hint(relay: str) -> str:
    return (f" Your mail service's help pages name the exact include:… to use; include:{relay} is the usual one."
            if relay else "")


# -- DKIM

def public_key_value(private_key: str) -> tuple[str, str]:
    """(k=, p=) of the DKIM record for this private key (PEM text or a path to it)."""
    pem = private_key if private_key.lstrip().startswith("-----") else Path(private_key).read_text()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "ed25519", base64.b64encode(raw).decode()
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("DKIM keys are RSA or Ed25519")
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "rsa", base64.b64encode(der).decode()


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def _same_key(published: str, kind: str, expected: str) -> bool:
    """Whether p= is the expected key; an RSA key may also be published as a bare RSAPublicKey."""
    if published == expected or kind != "rsa":
        return published == expected
    try:
        key = serialization.load_der_public_key(base64.b64decode(published))
    except ValueError:
        return False
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(spki).decode() == expected


def check_dkim(lookup: Lookup, config: Settings) -> Finding:
    domain, selector, private_key = (getattr(config, name).strip() for name in
                                     ("dkim_domain", "dkim_selector", "dkim_private_key"))
    if not (domain and selector and private_key):
        return Finding("DKIM", FAIL, "Mail is not signed (DKIM). Ask whoever set up this app to create a "
                                     "signing key (openssl genrsa 2048) and set DKIM_DOMAIN, DKIM_SELECTOR "
                                     "and DKIM_PRIVATE_KEY; this page then shows the record to publish.")
    try:
        kind, expected = public_key_value(private_key)
    except (OSError, ValueError, TypeError):
        return Finding("DKIM", FAIL, "DKIM_PRIVATE_KEY could not be read as a private key (PEM text or the path "
                                     "of a PEM file). Mail can't be signed until it is fixed.")
    name = f"{selector}._domainkey.{domain}"
    suggested = Record("TXT", name, f"v=DKIM1; k={kind}; p={expected}")
    records = [txt for txt in lookup.txt(name) if "p=" in txt.replace(" ", "")]
    if not records:
        return Finding("DKIM", FAIL, f"There is no DKIM key at {name}, so receivers can't check the signature "
                                     "on your mail.", suggested)
    published = _tags(records[0]).get("p", "")
    if len(records) > 1 or not _same_key(published, kind, expected):
        return Finding("DKIM", FAIL, f"The DKIM key published at {name} is not the one your mail is signed with "
                                     "(DKIM_PRIVATE_KEY), so signatures fail. Replace the record with this.",
                       suggested)
    return Finding("DKIM", PASS, f"The key at {name} matches the one your mail is signed with.")


# -- DMARC

def aligned(domain: str, other: str, mode: str) -> bool:
    """DMARC identifier alignment: the same name (strict, "s") or the same organisation (relaxed)."""
    domain, other = domain.lower().rstrip("."), other.lower().rstrip(".")
    return domain == other if mode == "s" else organizational_domain(domain) == organizational_domain(other)


def check_dmarc(lookup: Lookup, domain: str, config: Settings, return_path_domain: str) -> Finding:
    name = f"_dmarc.{domain}"
    records = [txt for txt in lookup.txt(name) if txt.replace(" ", "").lower().startswith("v=dmarc1")]
    suggested = Record("TXT", name, "; ".join(["v=DMARC1", "p=none", *_report_to(domain, config)]))
    if not records:
        return Finding("DMARC", FAIL, f"{domain} has no DMARC record. Gmail, Yahoo and Outlook.com turn away "
                                      "bulk mail without one. p=none starts by only watching.", suggested)
    if len(records) > 1:
        return Finding("DMARC", FAIL, f"{name} has {len(records)} DMARC records; receivers then ignore all of "
                                      "them. Keep only one.", suggested)
    tags = _tags(records[0])
    if tags.get("p", "").lower() not in {"none", "quarantine", "reject"}:
        return Finding("DMARC", FAIL, f"The DMARC record at {name} has no policy (p=none, p=quarantine or "
                                      "p=reject), so receivers ignore it.", suggested)
    problems = []
    dkim_domain = config.dkim_domain.strip()
    if dkim_domain and not aligned(domain, dkim_domain, tags.get("adkim", "r").lower()):
        problems.append(f"your mail is signed for {dkim_domain} (DKIM_DOMAIN) but sent from {domain}; "
                        f"sign it for {domain} instead")
    if not aligned(domain, return_path_domain, tags.get("aspf", "r").lower()):
        problems.append(f"bounces go to {return_path_domain} (the return path) but mail is sent from {domain}")
    if not dkim_domain and problems:
        problems.append("with no DKIM signature either, DMARC has nothing that passes")
    if problems:
        return Finding("DMARC", FAIL, "DMARC will fail: " + "; ".join(problems) + ".")
    return Finding("DMARC", PASS, f"{domain} has a DMARC record (policy p={tags['p'].lower()}), and "
                                  "the signing and return-path domains line up with the From address.")


def _report_to(domain: str, config: Settings) -> list[str]:
    """rua= to the practice's inbox when it is on the same domain (another domain must authorise it)."""
    inbox = compose.Mailbox.parse(config.practice_inbox or config.mail_from)
    return [f"rua=mailto:{inbox.address}"] if aligned(domain, compose.domain_of(inbox), "r") else []


# -- MX

def check_mx(lookup: Lookup, domain: str) -> Finding:
    hosts = [host for host in lookup.mx(domain) if host not in {"", "."}]
    if not hosts:
        return Finding("MX", FAIL, f"{domain} has no MX record, so replies and bounces to it can't be delivered "
                                   "and some receivers refuse its mail. Publish the MX records your e-mail host "
                                   "gives you.")
    return Finding("MX", PASS, f"Mail to {domain} goes to {', '.join(sorted(hosts))}.")
