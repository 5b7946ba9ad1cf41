"""Reference data for attribution: registered domains, the referrer-class table and GA4's source categories."""

from __future__ import annotations

import csv
import ipaddress
import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import unquote_plus, urlsplit

import numpy as np
from publicsuffixlist import PublicSuffixList

from pipeline.settings import REFERENCE_DIR, Settings

CLASS_MEDIUM = {
    "search": "organic",
    "social": "social",
    "email": "email",
    "display": "display",
    "ai": "referral",
    "video": "referral",
    "shopping": "referral",
    "referral": "referral",
}
CLASS_CATEGORY = {"search": "SEARCH", "social": "SOCIAL", "video": "VIDEO", "shopping": "SHOPPING", "ai": "AI"}
CATEGORIES = [None, *CLASS_CATEGORY.values()]  # category codes: 0 = none
CATEGORY_CODES = {name: code for code, name in enumerate(CLASS_CATEGORY, start=1)}  # referrer class → category code
APP_SCHEME = "android-app://"

_PSL = PublicSuffixList()  # bundled list incl. the private section; never downloaded at run time


class ReferrerClass(NamedTuple):
    """How a referrer host is classed, and which query parameters carry a search engine's term."""

    name: str
    query_params: tuple[str, ...] = ()


class ParsedReferrer(NamedTuple):
    """A referrer reduced to what attribution needs: host (or app id), its query, and whether it is an app."""

    key: str
    query: str
    is_app: bool


UNKNOWN_SITE = ReferrerClass("referral")
WEBMAIL = ReferrerClass("email")
# Rules for the hosts of mail providers and search portals (pipeline/data/README.md), applied per distinct host.
# A label is read by its letters only (`mail01` → `mail`, `rich-v02` → `richv`).
MAIL_WORDS = re.compile(r"mail|^messagerie|^(?:poczta|posta|correo|courriel|courrier)$")  # mail, webmail, wmail, …
SEARCH_WORDS = frozenset({"suche", "recherche", "rechercher", "buscar", "busca", "buscador", "busqueda", "ricerca",
                          "cerca", "szukaj", "zoeken", "sok", "haku", "hledat", "hledani", "poisk", "arama"})  # fmt: skip
DEREFERRER = re.compile(r"deref-(?P<name>[a-z0-9-]+?)(?:-\d+)?")  # deref-gmx, deref-1und1-02: mail redirectors
PORTAL_QUERY_PARAMS = ("q", "query", "searchfor", "search", "su", "kw", "keyword", "keywords", "text")


@lru_cache(maxsize=1 << 16)
def registered_domain(host: str) -> str | None:
    """eTLD+1 of a host (public suffix list, private section included); an IP or a bare suffix is returned as is."""
    host = (host or "").strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    return _PSL.privatesuffix(host) or host  # IDN hosts keep the form they came in (PSL test-suite convention)


@lru_cache(maxsize=1 << 12)
def public_suffix(host: str) -> str | None:
    """The public suffix of a host (private section included: `github.io`), or None when it has none."""
    return _PSL.publicsuffix(host.strip().lower().rstrip("."))


def ascii_host(host: str) -> str:
    """An internationalised host in its ASCII (punycode) form, for comparing: `bücher.de` is `xn--bcher-kva.de`."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@lru_cache(maxsize=1)
def referrer_table() -> dict[str, ReferrerClass]:
    """Host (or android app id) → class, read once from pipeline/data/referrers.csv."""
    with open(REFERENCE_DIR / "referrers.csv", newline="", encoding="utf-8") as f:
        return {
            row["host"].strip().lower(): ReferrerClass(
                row["class"].strip(), tuple(p for p in row["query_params"].split("|") if p)
            )
            for row in csv.DictReader(f)
        }


@lru_cache(maxsize=1)
def mail_domains() -> frozenset[str]:
    """Registered domains of mail providers (pipeline/data/mail_domains.txt), read once."""
    text = (REFERENCE_DIR / "mail_domains.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def search_domains() -> dict[str, tuple[str, ...]]:
    """Registered domain of every search host with query parameters → those parameters (all its hosts', in order)."""
    params: dict[str, tuple[str, ...]] = {}
    for host, klass in referrer_table().items():
        if klass.name == "search" and klass.query_params:
            domain = registered_domain(host) or host
            params[domain] = tuple(dict.fromkeys(params.get(domain, ()) + klass.query_params))
    return params


def _row(table: dict[str, ReferrerClass], labels: list[str]) -> ReferrerClass | None:
    """The row of a host, else the row of its numbered family (`#` for the digits of its first label)."""
    found = table.get(".".join(labels))
    if found is None and any(c.isdigit() for c in labels[0]):
        found = table.get(".".join([re.sub(r"\d+", "#", labels[0]), *labels[1:]]))
    return found


def _label_rule(labels: list[str], domain: str) -> ReferrerClass | None:
    """Webmail or portal search by the labels below a registered domain: `mail01.orange.fr` is email,
    `aolsearch.aol.co.uk` search (with the portal's query parameters, then common ones)."""
    mail_provider, search_params = domain in mail_domains(), search_domains().get(domain)
    if not mail_provider and search_params is None:
        return None  # most referrers: no rule can apply
    words = [re.sub(r"[^a-z]", "", label) for label in labels]
    if mail_provider and any(MAIL_WORDS.search(word) for word in words):
        return WEBMAIL
    if any(("search" in w and "research" not in w) or w in SEARCH_WORDS for w in words):
        return ReferrerClass("search", tuple(dict.fromkeys((search_params or ()) + PORTAL_QUERY_PARAMS)))
    return None


def _dereferrer_rule(domain: str) -> ReferrerClass | None:
    """`deref-<provider>[-NN].<suffix>` is the link redirector of the mail provider `<provider>.<suffix>`."""
    label, _, suffix = domain.partition(".")
    found = DEREFERRER.fullmatch(label)
    return WEBMAIL if found and f"{found['name']}.{suffix}" in mail_domains() else None


@lru_cache(maxsize=1 << 16)
def lookup_host(host: str) -> ReferrerClass | None:
    """Class of a host, most specific first: the rows of the host and of its parents below its registered domain
    (numbered families included), then the webmail/portal-search label rules, then the registered domain's row,
    then the dereferrer rule. Never climbs above the registered domain (`bucket.s3.amazonaws.com` is not Amazon)."""
    table = referrer_table()
    labels = host.lower().rstrip(".").split(".")
    domain = registered_domain(".".join(labels)) or ".".join(labels)
    below = max(len(labels) - len(domain.split(".")), 0)
    for i in range(below):
        found = _row(table, labels[i:])
        if found is not None:
            return found
    ruled = _label_rule(labels[:below], domain) if below else None
    return ruled or table.get(domain) or _dereferrer_rule(domain)


@lru_cache(maxsize=1 << 12)
def lookup_app(app_id: str) -> ReferrerClass | None:
    """Android app ids are reverse-DNS: the exact id, then the id without its last label (`...katana.beta`)."""
    table = referrer_table()
    labels = app_id.lower().split(".")
    for end in range(len(labels), 1, -1):
        found = table.get(".".join(labels[:end]))
        if found is not None:
            return found
    return None


@lru_cache(maxsize=1)
def ga4_source_categories() -> dict[str, str]:
    """GA4's source-category sheet as lower-cased source → SEARCH/SOCIAL/VIDEO/SHOPPING."""
    with open(REFERENCE_DIR / "ga4_source_categories.csv", newline="", encoding="utf-8") as f:
        return {
            row["source"].strip().lower(): row["source_category"].removeprefix("SOURCE_CATEGORY_")
            for row in csv.DictReader(f)
        }


def parse_referrer(raw: object) -> ParsedReferrer | None:
    """Host and query of an http(s) referrer, or the app id of an android-app:// one; None when unusable."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text[: len(APP_SCHEME)].lower() == APP_SCHEME:
        app_id = text[len(APP_SCHEME) :].split("/", 1)[0].split("?", 1)[0].strip()  # package names keep their case
        return ParsedReferrer(app_id, "", True) if app_id else None
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    host = host.rstrip(".")
    return ParsedReferrer(host, parts.query, False) if host else None


def query_value(query: str, names: tuple[str, ...]) -> str | None:
    """First non-empty value among the named parameters (exact names, in the given order), decoded and trimmed."""
    if not query or not names:
        return None
    values: dict[str, str] = {}
    for piece in query.split("&"):
        raw_name, sep, raw_value = piece.partition("=")
        name = unquote_plus(raw_name)
        if sep and name in names and name not in values:
            value = unquote_plus(raw_value).strip()
            if value:
                values[name] = value
    return next((values[n] for n in names if n in values), None)


def matches_domain(host: str, domains: list[str]) -> bool:
    """True when host is one of the domains or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def referrer_facts(referrers: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """Per distinct referrer (one parse each): source, excluded/own flag, medium, category code and search term.

    A last entry with no referrer is appended, for the rows whose referrer is NA (factorize code -1).
    """
    rows = []
    for raw in referrers:
        parsed = parse_referrer(raw)
        if parsed is None:
            rows.append((None, True, None, 0, None))
            continue
        source = parsed.key if parsed.is_app else registered_domain(parsed.key)
        blocked = matches_domain(parsed.key.lower(), settings.referral_exclusions) or (
            not parsed.is_app and matches_domain(parsed.key, settings.own_domains)  # covers its registered domain too
        )
        klass = (lookup_app(parsed.key) if parsed.is_app else lookup_host(parsed.key)) or UNKNOWN_SITE
        term = query_value(parsed.query, klass.query_params) if klass.name == "search" else None
        if term is not None and term.lower().startswith(("http://", "https://")):
            term = None  # google.com/url?q=https://… carries the link clicked, not a search
        medium, category = CLASS_MEDIUM.get(klass.name, "referral"), CATEGORY_CODES.get(klass.name, 0)
        rows.append((source, blocked, medium, category, term))
    rows.append((None, True, None, 0, None))
    types = {"source": object, "blocked": bool, "medium": object, "category": np.int64, "term": object}
    return {field: np.array(values, dtype=types[field]) for field, values in zip(types, zip(*rows), strict=True)}
