"""JSON lines for the sample generator: ids, timestamps, simulated events and the deliberately broken lines.

Simulated rows are formatted with f-strings from pre-encoded pieces (every vocabulary string is JSON-safe,
see `sample_site`), which is several times faster than json.dumps per event; hand-written events use json.dumps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

from pipeline.sample import site as site
from pipeline.sample.journeys import (
    REF_EMPTY,
    REF_INTERNAL,
    REF_NONE,
    REF_PAYPAL,
    REF_SOURCE,
    URL_EXTRA_QUERY,
    URL_FRAGMENT,
    URL_PLAIN,
    Journeys,
)

STORY_IDS = 1 << 62  # id inputs of hand-written story events and visitors; simulated ones are small row numbers
BROKEN_IDS = 1 << 61

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class IdMaker:
    """Deterministic uuid-like ids: a keyed bijection of 64-bit numbers, so distinct inputs never collide."""

    event_salt: int
    visitor_salt: int
    click_salt: int

    @classmethod
    def from_rng(cls, rng: np.random.Generator) -> IdMaker:
        """Salts drawn from the seed, so another seed gives other ids."""
        a, b, c = (int(x) for x in rng.integers(0, 2**63, 3))
        return cls(a, b, c)

    def events(self, numbers: np.ndarray) -> list[str]:
        """Event ids for event numbers."""
        return _uuid_like(_mix64(numbers, self.event_salt))

    def visitors(self, numbers: np.ndarray) -> list[str]:
        """Anonymous ids (first-party cookie values) for visitor numbers."""
        return _uuid_like(_mix64(numbers, self.visitor_salt))

    def event(self, number: int) -> str:
        """One event id."""
        return self.events(np.array([number], dtype=np.uint64))[0]

    def visitor(self, number: int) -> str:
        """One anonymous id."""
        return self.visitors(np.array([number], dtype=np.uint64))[0]


def _mix64(numbers: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64's finaliser over salted inputs: a bijection on 64 bits that looks random."""
    z = numbers.astype(np.uint64) + np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DIGIT_COLUMNS = [c for c in range(36) if c not in (8, 13, 18, 23)]


def _uuid_like(high: np.ndarray) -> list[str]:
    """Format 64 unique bits plus 64 derived bits in the 8-4-4-4-12 uuid layout (vectorised: ids are hot)."""
    n = len(high)
    words = np.stack([high, _mix64(high, 0x9E3779B97F4A7C15)], axis=1).astype(">u8")
    octets = words.view(np.uint8).reshape(n, 16)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = octets >> 4, octets & 15
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_DIGIT_COLUMNS] = _HEX_DIGITS[nibbles]
    joined = text.tobytes().decode("ascii")
    return [joined[i : i + 36] for i in range(0, 36 * n, 36)]


_CLOCK_OFFSET_MS = np.array([minutes * 60_000 for minutes, _, _ in site.CLOCKS], dtype=np.int64)
_CLOCK_MS = np.array([ms for _, ms, _ in site.CLOCKS])


def zone_suffix(offset_minutes: int) -> str:
    """`Z` for UTC, else `+HH:MM` / `-HH:MM`."""
    if offset_minutes == 0:
        return "Z"
    sign = "+" if offset_minutes > 0 else "-"
    return f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


_CLOCK_SUFFIX = [zone_suffix(minutes) for minutes, _, _ in site.CLOCKS]


def format_timestamps(ts_ms: np.ndarray, clock: np.ndarray) -> list[str]:
    """ISO 8601 strings of UTC instants as each visitor's clock writes them (zone, milliseconds)."""
    local = ts_ms + _CLOCK_OFFSET_MS[clock]
    seconds = np.datetime_as_string(local.astype("datetime64[ms]"), unit="s").tolist()
    millis = (local % 1000).tolist()
    return [f"{s}.{m:03d}{_CLOCK_SUFFIX[c]}" if _CLOCK_MS[c] else s + _CLOCK_SUFFIX[c]
            for s, m, c in zip(seconds, millis, clock.tolist())]


def _field(name: str, value: str) -> str:
    """A pre-encoded `,"name":"value"` fragment."""
    return f",{json.dumps(name)}:{json.dumps(value)}"


_AGENT_FIELDS = [_field("user_agent", ua) for ua in site.AGENTS] + [""]
_REF_FIELDS = ["", _field("referrer", ""), _field("referrer", site.PAYPAL_RETURN)]
_REF_SOURCE_BASE = len(_REF_FIELDS)
_REF_FIELDS += [_field("referrer", s.referrer or "") for s in site.SOURCES]
_REF_INTERNAL_BASE = len(_REF_FIELDS)
_REF_FIELDS += [_field("referrer", site.SITE + path) for path in site.PATHS]
_PLAIN_URLS = [site.SITE + path for path in site.PATHS]
_HAS_QUERY = np.array([bool(s.query or s.click_id) for s in site.SOURCES] + [False])  # index -1: no source
_EXTRA_QUERIES = [site.EXTRA_QUERIES.get(group, ("",)) for _, group in site.PAGES]


def _referrer_fields(journeys: Journeys, rows: np.ndarray) -> list[str]:
    """The referrer fragment of each row, looked up in one table of pre-encoded fragments."""
    kind = journeys.referrer[rows]
    index = np.select(
        [kind == REF_NONE, kind == REF_EMPTY, kind == REF_PAYPAL, kind == REF_SOURCE, kind == REF_INTERNAL],
        [0, 1, 2, _REF_SOURCE_BASE + journeys.source[rows], _REF_INTERNAL_BASE + journeys.prev_page[rows]])
    return [_REF_FIELDS[i] for i in index.tolist()]


def _click_value(name: str, x: int) -> str:
    """A plausible click id for the named parameter."""
    h = f"{x:016x}"
    if name == "gclid":
        return f"EAIaIQobChMI{h}{h[::-1][:6]}_BwE"
    if name == "fbclid":
        return f"IwAR{h[:10]}_{h[10:]}{h[::-1]}"
    return h + h[::-1]  # msclkid: 32 hex digits


def _page_url(page: int, style: int, source: int, x: int) -> str:
    """The page URL of one event: the site's page plus spelling variants and the landing's campaign parameters."""
    origin = site.SITE_VARIANTS[style] if style <= 2 else site.SITE
    params = []
    if style == URL_EXTRA_QUERY:
        options = _EXTRA_QUERIES[page]
        params.append(options[x % len(options)])
    if source >= 0:
        src = site.SOURCES[source]
        if src.query:
            params.append(src.query)
        if src.click_id:
            params.append(f"{src.click_id}={_click_value(src.click_id, x)}")
    url = origin + site.PATHS[page] + ("?" + "&".join(params) if params else "")
    return url + site.FRAGMENTS[x % len(site.FRAGMENTS)] if style == URL_FRAGMENT else url


def _page_urls(journeys: Journeys, rows: np.ndarray, salt: int) -> list[str]:
    """Page URLs of the rows; most are plain table lookups, the rest are assembled."""
    page, style, source = journeys.page[rows], journeys.url_style[rows], journeys.source[rows]
    special = (style != URL_PLAIN) | _HAS_QUERY[source]
    urls = [_PLAIN_URLS[p] for p in page.tolist()]
    picks = np.flatnonzero(special)
    noise = _mix64(rows[picks], salt).tolist()
    for i, p, s, src, x in zip(picks.tolist(), page[picks].tolist(), style[picks].tolist(), source[picks].tolist(), noise):
        urls[i] = _page_url(p, s, src, x)
    return urls


def contact_email(names: np.ndarray, contact: int) -> str:
    """The mailbox of a simulated contact (the contact number keeps different people apart)."""
    first, last, domain = names[contact].tolist()
    return f"{site.FIRST_NAMES[first]}.{site.LAST_NAMES[last]}{contact}@{site.EMAIL_DOMAINS[domain]}"


def _styled_email(email: str, style: int) -> str:
    """How a form may capture the mailbox: as typed, capitalised, with stray spaces, or shouted."""
    return (email, email.title(), f"  {email} ", email.upper())[style]


def _conversion_fields(journeys: Journeys, rows: np.ndarray) -> list[str]:
    """The email and conversion fragment of each row (empty for page views)."""
    out = [""] * len(rows)
    picks = np.flatnonzero(journeys.is_conversion[rows])
    kinds, contacts, styles = (a[rows[picks]].tolist() for a in (journeys.kind, journeys.contact, journeys.email_style))
    for i, k, c, s in zip(picks.tolist(), kinds, contacts, styles):
        kind = site.CONVERSION_KINDS[k]
        email = _styled_email(contact_email(journeys.contact_names, c), s)
        out[i] = f',"email":"{email}","conversion_type":"{kind.conversion_type}","conversion_id":"{kind.conversion_id}"'
    return out


def simulated_lines(journeys: Journeys, rows: np.ndarray, ids: IdMaker) -> list[str]:
    """JSON lines of simulated events (rows index the journeys; a row always gives the same bytes)."""
    visitor = journeys.visitor[rows]
    event_ids = ids.events(rows)
    anonymous_ids = ids.visitors(visitor)
    stamps = format_timestamps(journeys.ts_ms[rows], journeys.clock[visitor])
    types = ["conversion" if c else "page_view" for c in journeys.is_conversion[rows].tolist()]
    urls = _page_urls(journeys, rows, ids.click_salt)
    referrers = _referrer_fields(journeys, rows)
    conversions = _conversion_fields(journeys, rows)
    agents = [_AGENT_FIELDS[a] for a in journeys.agent[visitor].tolist()]
    return [f'{{"event_id":"{e}","anonymous_id":"{a}","timestamp":"{t}","event_type":"{k}","page_url":"{u}"{r}{c}{g}}}'
            for e, a, t, k, u, r, c, g in zip(event_ids, anonymous_ids, stamps, types, urls, referrers, conversions, agents)]


def event_line(event: dict) -> str:
    """One hand-written event as a compact JSON line (keys in the order given)."""
    return json.dumps(event, separators=(",", ":"))


BROKEN_KINDS = (
    "not_json", "truncated_json", "not_an_object", "missing_event_id", "missing_anonymous_id", "missing_timestamp",
    "timestamp_without_zone", "unparseable_timestamp", "ftp_page_url", "javascript_page_url", "unknown_event_type",
    "conversion_without_email", "conversion_invalid_email", "timestamp_too_late", "event_id_not_a_string",
)
"""One line of each kind is written; staging must quarantine every one of them."""


def broken_line(kind: str, load_day: date, number: int, ids: IdMaker) -> str:
    """A line that breaks the raw event contract in exactly the named way (otherwise a plausible event)."""
    noon = datetime(load_day.year, load_day.month, load_day.day, 12, tzinfo=timezone.utc) + timedelta(minutes=number)
    event = {
        "event_id": ids.event(BROKEN_IDS + number), "anonymous_id": ids.visitor(BROKEN_IDS + number),
        "timestamp": noon.strftime("%Y-%m-%dT%H:%M:%SZ"), "event_type": "page_view", "page_url": site.SITE + "/sale",
        "referrer": "https://www.google.com/", "user_agent": site.AGENTS[0],
    }
    conversion = {**event, "event_type": "conversion", "page_url": site.SITE + "/contact/thank-you",
                  "email": "jane.doe@example.com", "conversion_type": "html_form", "conversion_id": "contact-us"}
    too_late = noon + timedelta(days=2)  # past the end of the day after the load day
    if kind == "not_json":
        return "<html><head><title>502 Bad Gateway</title></head></html>"
    if kind == "truncated_json":
        text = event_line(event)
        return text[: len(text) // 2]
    if kind == "not_an_object":
        return json.dumps([event["event_id"], "page_view", event["page_url"]])
    changes = {
        "missing_event_id": {"event_id": None}, "missing_anonymous_id": {"anonymous_id": None},
        "missing_timestamp": {"timestamp": None}, "timestamp_without_zone": {"timestamp": noon.strftime("%Y-%m-%dT%H:%M:%S")},
        "unparseable_timestamp": {"timestamp": f"{load_day.year}-13-45T25:61:00Z"},
        "ftp_page_url": {"page_url": "ftp://files.acme-shoes.com/catalog-2025.pdf"},
        "javascript_page_url": {"page_url": "javascript:void(0)"}, "unknown_event_type": {"event_type": "add_to_cart"},
        "timestamp_too_late": {"timestamp": too_late.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "event_id_not_a_string": {"event_id": 100000 + number},
    }
    if kind == "conversion_without_email":
        return event_line({k: v for k, v in conversion.items() if k != "email"})
    if kind == "conversion_invalid_email":
        return event_line({**conversion, "email": "jane.doe.example.com"})
    changed = {**event, **changes[kind]}
    return event_line({k: v for k, v in changed.items() if v is not None})
