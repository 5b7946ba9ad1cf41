"""Tests for pipeline/generate.py: deterministic bytes, honest counts, contract-valid lines, every edge case present."""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.contract.schema import SCHEMA_PATH
from pipeline.sample.generate import GenerateSummary, generate_landing
from pipeline.sample.lines import BROKEN_KINDS
from pipeline.sample.site import BOT_PATTERN

EMAIL = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
ZONE = re.compile(r"([Zz]|[+-]\d{2}:?\d{2})$")


@dataclass(frozen=True)
class Line:
    """One physical line of the landing folder."""

    file: str  # relative to the landing folder
    dt: date
    number: int  # 1-based
    text: str


@dataclass(frozen=True)
class Event:
    """A valid event line, parsed."""

    line: Line
    data: dict
    at: datetime  # UTC

    def __getitem__(self, key):
        return self.data.get(key)


def read_landing(out: Path) -> list[Line]:
    """Every physical line in load-day, file-name, line order (the staging order)."""
    lines = []
    for path in sorted(out.glob("dt=*/*")):
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8")
        assert text.endswith("\n")
        dt = date.fromisoformat(path.parent.name[3:])
        rel = f"{path.parent.name}/{path.name}"
        lines += [Line(rel, dt, i, t) for i, t in enumerate(text[:-1].split("\n"), start=1)]
    return lines


def contract_breach(line: Line) -> str | None:
    """Why a non-blank line breaks SPEC section 2, or None when staging must load it."""
    try:
        event = json.loads(line.text)
    except ValueError:
        return "not json"
    if not isinstance(event, dict):
        return "not an object"
    for name in ("event_id", "anonymous_id", "timestamp", "event_type", "page_url"):
        if not isinstance(event.get(name), str) or not event[name].strip():
            return f"missing or non-string {name}"
    for name in ("referrer", "email", "conversion_type", "conversion_id", "user_agent"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return f"non-string {name}"
    if not ZONE.search(event["timestamp"]):
        return "timestamp without zone"
    try:
        at = datetime.fromisoformat(event["timestamp"])
    except ValueError:
        return "unparseable timestamp"
    end_of_next_day = datetime.combine(line.dt + timedelta(days=2), datetime.min.time(), tzinfo=timezone.utc)
    if at > end_of_next_day:
        return "timestamp too late"
    if not re.match(r"^https?://[^/?#\s]+", event["page_url"], re.IGNORECASE):
        return "page_url not http(s)"
    if event["event_type"] not in ("page_view", "conversion"):
        return "unknown event_type"
    if event["event_type"] == "conversion" and not EMAIL.match(event.get("email") or ""):
        return "conversion without valid email"
    return None


def parse_events(lines: list[Line]) -> list[Event]:
    """The valid lines as events (duplicates included), in staging order."""
    events = []
    for line in lines:
        if line.text and contract_breach(line) is None:
            data = json.loads(line.text)
            events.append(Event(line, data, datetime.fromisoformat(data["timestamp"]).astimezone(timezone.utc)))
    return events


def first_copies(events: list[Event]) -> list[Event]:
    """Events after dropping repeats of an event_id (the earliest copy is kept)."""
    seen, kept = set(), []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            kept.append(event)
    return kept


def normal_email(event: Event) -> str:
    """The email as staging stores it."""
    return event["email"].strip().lower()


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> tuple[GenerateSummary, list[Line], list[Event]]:
    """The default-size sample, read back."""
    out = tmp_path_factory.mktemp("landing")
    summary = generate_landing(out)
    lines = read_landing(out)
    return summary, lines, first_copies(parse_events(lines))


def landing_bytes(out: Path) -> dict[str, bytes]:
    """File name -> bytes of a landing folder."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    generate_landing(tmp_path / "a", visitors=300, days=4, seed=11)
    generate_landing(tmp_path / "b", visitors=300, days=4, seed=11)
    assert landing_bytes(tmp_path / "a") == landing_bytes(tmp_path / "b")


def test_other_seed_gives_other_events(tmp_path):
    generate_landing(tmp_path / "a", visitors=300, days=4, seed=11)
    generate_landing(tmp_path / "b", visitors=300, days=4, seed=12)
    a, b = landing_bytes(tmp_path / "a"), landing_bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[name] != b[name] for name in a)


def test_summary_counts_match_the_files(landing):
    summary, lines, events = landing
    non_blank = [line for line in lines if line.text]
    all_valid = parse_events(lines)
    assert summary.lines == len(non_blank) == summary.events + summary.duplicates + summary.broken_lines
    assert summary.files == len({line.file for line in lines})
    assert summary.days == sorted({line.dt.isoformat() for line in lines})
    assert summary.events == len(events)
    assert summary.duplicates == len(all_valid) - len(events)
    assert summary.conversions == sum(e["event_type"] == "conversion" for e in events)
    assert summary.bot_events == sum(bool(BOT_PATTERN.search(e["user_agent"] or "")) for e in events)
    assert summary.late_events == sum(e.at.date() < e.line.dt for e in events)
    assert summary.visitors == len({e["anonymous_id"] for e in events})


def test_default_sample_spans_the_requested_days(landing):
    summary, _, _ = landing
    assert summary.days == [f"2025-03-0{d}" for d in range(1, 8)]


def test_broken_lines_are_exactly_the_contract_breaches(landing):
    summary, lines, _ = landing
    breaches = {(line.file, line.number) for line in lines if line.text and contract_breach(line)}
    assert breaches == {(b.file, b.line) for b in summary.broken}
    assert sorted(b.kind for b in summary.broken) == sorted(BROKEN_KINDS)
    assert summary.broken_lines == len(BROKEN_KINDS)


def test_valid_lines_match_the_raw_event_schema(landing):
    schema = json.loads(SCHEMA_PATH.read_text())  # the contract's own file: a missing one fails, never skips
    try:
        import jsonschema_rs

        is_valid = jsonschema_rs.validator_for(schema).is_valid
    except ImportError:  # the pure-Python validator gives the same answer, slower
        import jsonschema

        is_valid = jsonschema.Draft202012Validator(schema).is_valid
    _, _, events = landing
    assert [e.line for e in events if not is_valid(e.data)] == []


def test_valid_events_arrive_no_later_than_the_day_after(landing):
    _, _, events = landing
    assert all(e.at.date() <= e.line.dt + timedelta(days=1) for e in events)


def test_blank_lines_are_written_but_not_counted(landing):
    summary, lines, _ = landing
    assert sum(not line.text for line in lines) == 3
    assert summary.lines == sum(bool(line.text) for line in lines)


def test_event_ids_are_unique_apart_from_exact_duplicates(landing):
    _, lines, _ = landing
    by_id = defaultdict(set)
    for event in parse_events(lines):
        by_id[event["event_id"]].add(event.line.text)
    assert all(len(texts) == 1 for texts in by_id.values())


def test_duplicates_in_the_same_file_and_in_a_later_partition(landing):
    _, lines, _ = landing
    places = defaultdict(list)
    for event in parse_events(lines):
        places[event["event_id"]].append(event.line)
    repeated = [p for p in places.values() if len(p) > 1]
    assert any(p[0].file == p[1].file for p in repeated)
    assert any(p[1].dt > p[0].dt for p in repeated)


def test_late_events_land_in_a_later_partition(landing):
    _, _, events = landing
    late = [e for e in events if e.at.date() < e.line.dt]
    assert 0.005 < len(late) / len(events) < 0.06
    assert {(e.line.dt - e.at.date()).days for e in late} <= {1, 2, 3}


def test_bots_use_known_crawler_agents(landing):
    _, _, events = landing
    agents = {e["user_agent"] for e in events if BOT_PATTERN.search(e["user_agent"] or "")}
    for name in ("Googlebot", "bingbot", "AhrefsBot", "python-requests", "HeadlessChrome"):
        assert any(name in agent for agent in agents), name


def query_keys(event: Event) -> set[str]:
    """The query parameter names of an event's page URL."""
    return set(parse_qs(urlsplit(event["page_url"]).query))


def test_landing_urls_carry_utm_and_click_ids(landing):
    _, _, events = landing
    keys = set().union(*(query_keys(e) for e in events))
    assert {"gclid", "msclkid", "fbclid", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"} <= keys
    assert {"color", "size"} <= keys  # ordinary parameters that must survive normalisation


def test_page_urls_vary_in_spelling(landing):
    _, _, events = landing
    urls = [e["page_url"] for e in events]
    assert any("WWW.Acme-Shoes.com" in u for u in urls)
    assert any(":443/" in u for u in urls)
    assert any("#" in u for u in urls)


def test_referrers_cover_every_kind_of_source(landing):
    _, _, events = landing
    referrers = {e["referrer"] for e in events}
    assert "" in referrers and any(e["referrer"] is None for e in events)
    for needle in ("android-app://com.linkedin.android", "android-app://com.google.android.gm", "google.co.uk",
                   "duckduckgo.com", "search.yahoo.com/search?p=", "yandex.ru/search/?text=", "baidu.com/s?wd=",
                   "t.co/", "lnkd.in", "mail.google.com", "outlook.live.com", "github.io", "chatgpt.com",
                   "perplexity.ai", "doubleclick.net", "paypal.com"):
        assert any(needle in (r or "") for r in referrers), needle


def test_timestamps_use_several_zone_spellings(landing):
    _, _, events = landing
    stamps = [e["timestamp"] for e in events]
    assert sum(s.endswith("Z") for s in stamps) > 0.7 * len(stamps)
    assert any(s.endswith("+02:00") for s in stamps) and any(s.endswith("-05:00") for s in stamps)
    assert any(re.search(r"\.\d{3}(Z|[+-])", s) for s in stamps)


def conversions_by_email(events: list[Event]) -> dict[str, list[Event]]:
    """Conversions grouped by normalised email."""
    grouped = defaultdict(list)
    for event in events:
        if event["event_type"] == "conversion":
            grouped[normal_email(event)].append(event)
    return grouped


def test_repeat_converter_converts_on_several_days(landing):
    _, _, events = landing
    grouped = conversions_by_email(events)
    assert any(len({e.at.date() for e in convs}) >= 2 for convs in grouped.values())
    assert len(grouped["maria.garcia@example.com"]) == 3


def test_second_device_converts_with_the_same_email(landing):
    _, _, events = landing
    devices = {email: {e["anonymous_id"] for e in convs} for email, convs in conversions_by_email(events).items()}
    assert len(devices["tom.baker@example.org"]) == 2
    assert sum(len(ids) > 1 for ids in devices.values()) > 1  # the simulation has some too


def test_shared_device_converts_with_two_emails_on_different_days(landing):
    _, _, events = landing
    by_device = defaultdict(dict)
    for event in events:
        if event["event_type"] == "conversion":
            by_device[event["anonymous_id"]].setdefault(normal_email(event), event.at.date())
    shared = [emails for emails in by_device.values() if len(emails) > 1]
    assert any(len(set(emails.values())) > 1 for emails in shared)
    assert any(set(emails) == {"anna.schmidt@web.de", "jonas.schmidt@web.de"} for emails in shared)


def visitor_timelines(events: list[Event]) -> dict[str, list[Event]]:
    """Each visitor's events in time order."""
    timelines = defaultdict(list)
    for event in sorted(events, key=lambda e: (e.at, e["event_type"] != "page_view", e["event_id"])):
        timelines[event["anonymous_id"]].append(event)
    return timelines


def gaps(events: list[Event]):
    """Consecutive (earlier, later, seconds between) pairs of each visitor."""
    for timeline in visitor_timelines(events).values():
        for a, b in zip(timeline, timeline[1:]):
            yield a, b, (b.at - a.at).total_seconds()


def test_idle_gaps_of_exactly_and_over_thirty_minutes(landing):
    _, _, events = landing
    seconds = [s for *_, s in gaps(events)]
    assert 1800 in seconds
    assert any(1800 < s <= 3600 for s in seconds)


def test_session_crosses_midnight_into_the_next_partition(landing):
    _, _, events = landing
    assert any(a.at.date() < b.at.date() and s < 1800 and a.line.dt < b.line.dt for a, b, s in gaps(events))


def test_internal_navigation_uses_the_site_as_referrer(landing):
    _, _, events = landing
    internal = [b for a, b, s in gaps(events) if s < 600 and b["event_type"] == "page_view"]
    on_site = sum((b["referrer"] or "").startswith("https://www.acme-shoes.com/") for b in internal)
    assert on_site > 0.8 * len(internal)


def test_checkout_conversion_after_paypal_on_a_thank_you_page(landing):
    _, _, events = landing
    conversions = [e for e in events if e["event_type"] == "conversion"]
    assert any("paypal.com" in (e["referrer"] or "") and "/checkout/thank-you" in e["page_url"] for e in conversions)
    assert any(a["page_url"].endswith("/checkout") and b["page_url"].endswith("/checkout/thank-you")
               and b["event_type"] == "conversion" for a, b, _ in gaps(events))


def test_conversion_can_be_the_first_event_of_a_session(landing):
    _, _, events = landing
    assert any(b["event_type"] == "conversion" and s > 1800 for _, b, s in gaps(events))


def campaign_of(event: Event) -> dict:
    """The campaign parameters (utm_* and click ids) on an event's page URL."""
    query = parse_qs(urlsplit(event["page_url"]).query)
    return {k: v for k, v in query.items() if k.startswith("utm_") or k in ("gclid", "msclkid", "fbclid")}


def test_campaign_changes_within_thirty_minutes(landing):
    _, _, events = landing
    changes = 0
    for timeline in visitor_timelines(events).values():
        current = campaign_of(timeline[0])
        for a, b in zip(timeline, timeline[1:]):
            if (b.at - a.at).total_seconds() > 1800:
                current = campaign_of(b)
            elif campaign_of(b):
                changes += bool(current) and campaign_of(b) != current
                current = campaign_of(b)
    assert changes > 0


def test_conversion_types_and_messy_emails(landing):
    _, _, events = landing
    conversions = [e for e in events if e["event_type"] == "conversion"]
    assert {e["conversion_type"] for e in conversions} == {"hubspot_form", "html_form", "custom"}
    assert "638e-2340-45773f-00252" in {e["conversion_id"] for e in conversions}
    assert any(e["email"] != e["email"].strip() for e in conversions)
    assert any(e["email"] != e["email"].lower() for e in conversions)


def test_default_sample_has_a_gzip_partition(landing):
    _, lines, _ = landing
    assert any(line.file.endswith(".jsonl.gz") for line in lines)


def test_target_events_gives_exactly_that_many_lines_in_one_partition(tmp_path):
    summary = generate_landing(tmp_path, target_events=5000, lines_per_file=2000, start=date(2025, 6, 1))
    lines = read_landing(tmp_path)
    assert summary.lines == len(lines) == 5000
    assert summary.days == ["2025-06-01"] and {line.dt for line in lines} == {date(2025, 6, 1)}
    assert summary.files == 3 and all(line.file.endswith(".jsonl") for line in lines)
    assert sum(contract_breach(line) is not None for line in lines) == summary.broken_lines == len(BROKEN_KINDS)


def test_simulated_traffic_alone_has_identity_edge_cases(tmp_path):
    # target mode holds no hand-written stories: these come from the simulation's rates
    generate_landing(tmp_path, target_events=30_000)
    events = first_copies(parse_events(read_landing(tmp_path)))
    grouped = conversions_by_email(events)
    assert any(len(convs) >= 2 for convs in grouped.values())
    assert any(len({e["anonymous_id"] for e in convs}) >= 2 for convs in grouped.values())
    emails_per_device = defaultdict(set)
    for convs in grouped.values():
        for e in convs:
            emails_per_device[e["anonymous_id"]].add(normal_email(e))
    assert any(len(emails) >= 2 for emails in emails_per_device.values())
    assert any(e.at.date() < e.line.dt for e in events)  # the backlog of earlier days


def test_refuses_a_folder_that_already_holds_partitions(tmp_path):
    generate_landing(tmp_path, visitors=20, days=1)
    with pytest.raises(FileExistsError):
        generate_landing(tmp_path, visitors=20, days=1)


@pytest.mark.parametrize("share", [0.0, 0.10, 0.34])
def test_converting_share_is_the_share_of_human_visitors_who_convert(share):
    import numpy as np

    from pipeline.sample.journeys import simulate_journeys

    journeys = simulate_journeys(np.random.default_rng(5), visitors=20_000, window_start_ms=0, window_days=7, converter_share=share)
    converted = np.unique(journeys.visitor[journeys.is_conversion]).size / 20_000
    # a little less than the share: 2% of visitors are bots, and a conversion planned after the window's end
    # has not arrived yet
    assert 0.88 * share <= converted <= 0.98 * share


def test_cli_refuses_a_converting_share_outside_0_to_1(tmp_path):
    from pipeline.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["generate", "--out", str(tmp_path / "x"), "--converting-share", "1.5"])
    assert exited.value.code == 2
