"""Simulated visitor journeys for the sample generator, built column-wise with numpy so millions stay fast.

Visitors have sessions, sessions have page views (and maybe a conversion funnel), and every event gets
a page, a referrer kind, a time. The result is one array per attribute in journey order
(visitor, session, position); `pipeline.sample_lines` turns rows of it into JSON lines.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pipeline.sample import site as site

DAY_MS = 86_400_000
VISITORS_PER_BLOCK = 50_000
CONVERTER_SHARE = 0.10  # humans who convert at least once (the benchmark of the reader uses a third)
REF_NONE, REF_EMPTY, REF_SOURCE, REF_INTERNAL, REF_PAYPAL = range(5)
"""Referrer kinds: no field, empty string, the session source's referrer, the previous page, the payment provider."""
URL_PLAIN, URL_UPPER_HOST, URL_PORT, URL_FRAGMENT, URL_EXTRA_QUERY = range(5)

HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 7, 7, 6, 6, 6, 7, 8, 9, 9, 8, 5, 3], dtype=float)
"""Traffic by hour of the day (UTC): quiet nights, busy evenings."""


@dataclass
class Journeys:
    """Bulk events in journey order, one array per attribute, plus per-visitor and per-contact lookups."""

    visitor: np.ndarray  # int32, per event
    session: np.ndarray  # int32, per event
    position: np.ndarray  # int16, index of the event in its session
    ts_ms: np.ndarray  # int64, UTC epoch milliseconds
    is_conversion: np.ndarray  # bool
    page: np.ndarray  # int16 into site.PATHS
    url_style: np.ndarray  # uint8 URL_*
    referrer: np.ndarray  # uint8 REF_*
    prev_page: np.ndarray  # int16 into site.PATHS (meaningful for REF_INTERNAL)
    source: np.ndarray  # int16 into site.SOURCES, -1 when the event carries no source
    kind: np.ndarray  # uint8 into site.CONVERSION_KINDS (meaningful for conversions)
    contact: np.ndarray  # int32 into the contact arrays, -1 for page views
    email_style: np.ndarray  # uint8: 0 as is, 1 capitalised, 2 padded with spaces, 3 upper case
    agent: np.ndarray  # int16 per visitor into site.AGENTS, len(site.AGENTS) means no user_agent field
    clock: np.ndarray  # uint8 per visitor into site.CLOCKS
    contact_names: np.ndarray  # int16 (n_contacts, 3): first name, last name, email domain

    PER_EVENT = ("visitor", "session", "position", "ts_ms", "is_conversion", "page", "url_style", "referrer",
                 "prev_page", "source", "kind", "contact", "email_style")

    def __len__(self) -> int:
        return len(self.ts_ms)

    def take(self, rows: np.ndarray | slice) -> Journeys:
        """The same journeys restricted to some events (visitor and contact lookups are kept whole)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Journeys(**{k: (v[rows] if k in self.PER_EVENT else v) for k, v in values.items()})


def simulate_journeys(rng: np.random.Generator, *, visitors: int, window_start_ms: int, window_days: int,
                      backlog_days: int = 0, max_events: int | None = None, converter_share: float = CONVERTER_SHARE) -> Journeys:
    """Journeys of up to `visitors` visitors whose first visit falls in the window (rarely in the backlog days
    before it), simulated in blocks of visitors so memory stays flat; stops once `max_events` events exist."""
    blocks, total = [], 0
    for first in range(0, visitors, VISITORS_PER_BLOCK):
        size = min(VISITORS_PER_BLOCK, visitors - first)
        block = _simulate_block(rng.spawn(1)[0], size, window_start_ms=window_start_ms, window_days=window_days,
                                backlog_days=backlog_days, converter_share=converter_share)
        blocks.append(block)
        total += len(block)
        if max_events is not None and total >= max_events:
            break
    journeys = _concatenate(blocks)
    return journeys if max_events is None else journeys.take(slice(0, max_events))


def _simulate_block(rng: np.random.Generator, visitors: int, *, window_start_ms: int, window_days: int,
                    backlog_days: int, converter_share: float) -> Journeys:
    """One block of visitors, numbered from 0 (visitors, sessions and contacts)."""
    people = _visitor_profiles(rng, visitors, converter_share)
    sessions = _session_plan(rng, people)
    events = _expand_events(rng, sessions, people)
    starts = _session_starts(rng, sessions, events, window_days=window_days, backlog_days=backlog_days)
    ts_ms = window_start_ms + (starts[events["session"]] + events["offset_s"]) * 1000 + events["jitter_ms"]
    journeys = Journeys(
        visitor=sessions["visitor"][events["session"]], session=events["session"], position=events["position"],
        ts_ms=ts_ms, is_conversion=events["is_conversion"], page=events["page"], url_style=events["url_style"],
        referrer=events["referrer"], prev_page=events["prev_page"], source=events["source"], kind=events["kind"],
        contact=events["contact"], email_style=events["email_style"], agent=people["agent"], clock=people["clock"],
        contact_names=_contact_names(rng, people["n_contacts"]),
    )
    arrived = ts_ms < window_start_ms + window_days * DAY_MS  # later events have not reached the landing folder yet
    return journeys.take(np.flatnonzero(arrived))


def _concatenate(blocks: list[Journeys]) -> Journeys:
    """Blocks joined into one, renumbering visitors, sessions and contacts so they stay distinct.

    Each column is released from the blocks as soon as it is joined, so the peak is one column above the result.
    """
    offsets = {
        "visitor": np.cumsum([0] + [len(b.agent) for b in blocks]),
        "session": np.cumsum([0] + [int(b.session.max()) + 1 if len(b) else 0 for b in blocks]),
        "contact": np.cumsum([0] + [len(b.contact_names) for b in blocks]),
    }
    joined = {}
    for f in fields(Journeys):
        parts = [getattr(b, f.name) for b in blocks]
        if f.name in offsets:
            parts = [np.where(p >= 0, p + p.dtype.type(offsets[f.name][i]), p) for i, p in enumerate(parts)]
        joined[f.name] = np.concatenate(parts)
        del parts
        for b in blocks:
            setattr(b, f.name, None)
    return Journeys(**joined)


def _ordinal(counts: np.ndarray) -> np.ndarray:
    """Position of each item inside its group, for groups laid out back to back with these sizes."""
    starts = np.cumsum(counts) - counts
    return np.arange(counts.sum()) - np.repeat(starts, counts)


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running total of `values` restarting at every group (groups back to back with these sizes)."""
    total = np.cumsum(values)
    before = np.repeat(total[np.cumsum(counts) - counts] - values[np.cumsum(counts) - counts], counts)
    return total - before


def _choice(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    """Indices drawn with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _visitor_profiles(rng: np.random.Generator, n: int, converter_share: float = CONVERTER_SHARE) -> dict[str, np.ndarray]:
    """Who each visitor is: bot or human, browser, clock, how often they come back, whether and how they convert."""
    bot = rng.random(n) < 0.02
    agent = np.where(bot, len(site.HUMAN_AGENTS) + rng.integers(0, len(site.BOT_AGENTS), n),
                     _choice(rng, [w for _, w in site.HUMAN_AGENTS], n))
    agent[~bot & (rng.random(n) < 0.01)] = len(site.AGENTS)  # a few trackers send no user agent
    clock = _choice(rng, [w for *_, w in site.CLOCKS], n)
    n_sessions = np.where(bot, rng.integers(1, 3, n), np.minimum(rng.geometric(0.45, n), 10))
    converter = ~bot & (rng.random(n) < converter_share)
    repeat = converter & (n_sessions >= 2) & (rng.random(n) < 0.35)
    shared = repeat & (rng.random(n) < 0.15)  # a family computer: a second person converts later
    second_device = converter & ~repeat & (rng.random(n) < 0.08)  # the phone of someone converting elsewhere
    contact, extra, n_contacts = _contact_ids(rng, converter & ~second_device, second_device, shared)
    return {"bot": bot, "agent": agent.astype(np.int16), "clock": clock.astype(np.uint8), "n_sessions": n_sessions,
            "converter": converter, "repeat": repeat, "shared": shared, "contact": contact, "extra_contact": extra,
            "n_contacts": np.array(n_contacts)}


def _contact_ids(rng: np.random.Generator, primary: np.ndarray, second_device: np.ndarray, shared: np.ndarray):
    """Contact of each visitor: its own, a primary's (second devices), and a second one for shared devices."""
    contact = np.full(len(primary), -1, dtype=np.int32)
    owners = np.flatnonzero(primary)
    contact[owners] = np.arange(len(owners))
    partners = np.flatnonzero(second_device)
    if len(owners):
        contact[partners] = contact[owners[rng.integers(0, len(owners), len(partners))]]
    extra = np.full(len(primary), -1, dtype=np.int32)
    sharers = np.flatnonzero(shared)
    extra[sharers] = len(owners) + np.arange(len(sharers))
    return contact, extra, len(owners) + len(sharers)


def _contact_names(rng: np.random.Generator, n_contacts) -> np.ndarray:
    """First name, last name and mail domain of every contact (emails also carry the contact number)."""
    n = int(n_contacts)
    return np.stack([rng.integers(0, len(site.FIRST_NAMES), n), rng.integers(0, len(site.LAST_NAMES), n),
                     rng.integers(0, len(site.EMAIL_DOMAINS), n)], axis=1).astype(np.int16)


def _session_plan(rng: np.random.Generator, people: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per session: its visitor, length, source, and which sessions convert (kind and contact)."""
    counts = people["n_sessions"]
    visitor = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    ordinal = _ordinal(counts)
    n = len(visitor)
    bot = people["bot"][visitor]
    first_conversion = (rng.random(len(counts)) * counts).astype(np.int64)[visitor]
    converts = people["converter"][visitor] & (
        (ordinal == first_conversion)
        | (people["repeat"][visitor] & (ordinal > first_conversion) & (rng.random(n) < 0.6)))
    converts &= _group_cumsum(converts.astype(np.int64), counts) <= 4
    contact = np.where(people["shared"][visitor] & (ordinal > first_conversion),
                       people["extra_contact"][visitor], people["contact"][visitor])
    converts &= contact >= 0  # second devices need a primary contact to share
    kind = _choice(rng, [k.weight for k in site.CONVERSION_KINDS], n).astype(np.uint8)
    n_browse = np.where(bot, rng.integers(3, 21, n), np.minimum(rng.geometric(0.35, n), 15))
    source = np.where(bot, site.DIRECT_SOURCE, _choice(rng, site.SOURCE_WEIGHTS, n))
    campaign = np.array(site.CAMPAIGN_SOURCES)
    alternative = campaign[rng.integers(0, len(campaign), n)]
    alternative = np.where(alternative == source, campaign[(np.searchsorted(campaign, alternative) + 1) % len(campaign)],
                           alternative)
    return {
        "visitor": visitor, "ordinal": ordinal, "bot": bot, "converts": converts, "contact": contact,
        "kind": kind,
        "n_browse": n_browse, "source": source, "alternative": alternative,
        "campaign_change": ~bot & (n_browse >= 3) & (rng.random(n) < 0.015),  # a second ad click at position 2
        "idle": np.where(~bot & (n_browse >= 2), _choice(rng, [0.992, 0.004, 0.004], n), 0),  # 1: exactly 30 min, 2: more
        "late_submit": converts & _is_form(kind) & (rng.random(n) < 0.05),  # a form sent long after it was opened
    }


def _is_form(kind: np.ndarray) -> np.ndarray:
    """Whether each conversion kind is a form (a form can be sent long after the page was opened; a checkout cannot)."""
    return np.array([k.conversion_type != "custom" for k in site.CONVERSION_KINDS])[kind]


def _funnel_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Funnel length, funnel pages (padded) and conversion page (-1: the page before) per conversion kind."""
    kinds = site.CONVERSION_KINDS
    width = max(len(k.funnel) for k in kinds)
    pages = np.zeros((len(kinds), max(width, 1)), dtype=np.int16)
    for i, kind in enumerate(kinds):
        pages[i, : len(kind.funnel)] = [site.PAGE[p] for p in kind.funnel]
    lengths = np.array([len(k.funnel) for k in kinds])
    conversion_page = np.array([site.PAGE[k.page] if k.page else -1 for k in kinds], dtype=np.int16)
    return lengths, pages, conversion_page


def _page_weights(weights_by_group: dict[int, float], extra_funnel: tuple[str, ...] = ()) -> np.ndarray:
    """Per-page probabilities from per-group shares, spread evenly over each group's pages."""
    groups = np.array([g for _, g in site.PAGES])
    allowed = np.array([g != site.FUNNEL or p in extra_funnel for p, g in site.PAGES])
    weights = np.zeros(len(site.PAGES))
    for group, share in weights_by_group.items():
        members = (groups == group) & allowed
        weights[members] = share / members.sum()
    return weights


def _expand_events(rng: np.random.Generator, sessions: dict, people: dict) -> dict[str, np.ndarray]:
    """Events of every session: pages, referrers, conversion fields and seconds since the session's start."""
    lengths, funnel_pages, conversion_page = _funnel_tables()
    kind = sessions["kind"]
    n_events = sessions["n_browse"] + np.where(sessions["converts"], lengths[kind] + 1, 0)
    session = np.repeat(np.arange(len(n_events), dtype=np.int32), n_events)
    position = _ordinal(n_events).astype(np.int16)
    n = len(session)
    browse = sessions["n_browse"][session]
    is_conversion = sessions["converts"][session] & (position == n_events[session] - 1)
    in_funnel = sessions["converts"][session] & (position >= browse) & ~is_conversion
    ev_kind = kind[session]

    landing = _choice(rng, _page_weights(site.LANDING_WEIGHTS), n)
    wander = _choice(rng, _page_weights(site.BROWSE_WEIGHTS, site.BROWSE_FUNNEL_PAGES), n)
    page = np.where(position == 0, landing, wander).astype(np.int16)
    step = np.clip(position - browse, 0, funnel_pages.shape[1] - 1)
    page = np.where(in_funnel, funnel_pages[ev_kind, step], page)
    fires_on = conversion_page[ev_kind]
    page = np.where(is_conversion, np.where(fires_on >= 0, fires_on, np.roll(page, 1)), page)
    prev_page = np.roll(page, 1)

    change = sessions["campaign_change"][session] & (position == 2)
    source = np.where(position == 0, sessions["source"][session],
                      np.where(change, sessions["alternative"][session], -1)).astype(np.int16)
    referrer = _referrer_kinds(source, position, change, in_funnel | is_conversion, ev_kind, browse, lengths,
                               sessions["bot"][session])
    style = _choice(rng, [0.91, 0.01, 0.01, 0.02, 0.05], n).astype(np.uint8)
    group = np.array([g for _, g in site.PAGES])[page]
    style[(style == URL_FRAGMENT) & ~np.isin(group, [site.PRODUCT, site.BLOG])] = URL_PLAIN
    style[(style == URL_EXTRA_QUERY) & ~np.isin(group, [site.PRODUCT, site.CATEGORY])] = URL_PLAIN
    style[is_conversion] = URL_PLAIN

    offset_s, jitter = _event_offsets(rng, sessions, session, position, is_conversion, people)
    return {
        "session": session, "position": position, "is_conversion": is_conversion, "page": page, "prev_page": prev_page,
        "source": source, "referrer": referrer, "url_style": style, "kind": ev_kind,
        "contact": np.where(is_conversion, sessions["contact"][session], -1).astype(np.int32),
        "email_style": np.where(is_conversion, _choice(rng, [0.90, 0.04, 0.03, 0.03], n), 0).astype(np.uint8),
        "offset_s": offset_s, "jitter_ms": jitter,
    }


def _referrer_kinds(source, position, change, in_checkout, kind, browse, lengths, bot) -> np.ndarray:
    """Referrer kind per event: the source's on landings and ad clicks, the payment provider, else the previous page."""
    has_referrer = np.array([s.referrer is not None for s in site.SOURCES])
    empty = np.array([s.referrer == "" for s in site.SOURCES])
    from_source = np.where(has_referrer[source], np.where(empty[source], REF_EMPTY, REF_SOURCE), REF_NONE)
    paypal = np.array([k.via_paypal for k in site.CONVERSION_KINDS])[kind] & in_checkout
    paypal &= position >= browse + lengths[kind] - 1  # the thank-you page view and the conversion after PayPal
    referrer = np.where(position == 0, from_source, np.where(change, from_source, REF_INTERNAL))
    referrer = np.where(paypal, REF_PAYPAL, referrer)
    return np.where(bot, REF_NONE, referrer).astype(np.uint8)


def _event_offsets(rng, sessions, session, position, is_conversion, people) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from the session start to each event, plus millisecond jitter for clocks that show milliseconds."""
    n = len(session)
    gap = np.clip(np.rint(rng.lognormal(np.log(45), 0.9, n)), 10, 600).astype(np.int64)
    gap = np.where(sessions["bot"][session], rng.integers(1, 6, n), gap)
    gap = np.where(is_conversion, rng.integers(5, 181, n), gap)
    gap = np.where(is_conversion & sessions["late_submit"][session], rng.integers(35 * 60, 90 * 60 + 1, n), gap)
    idle = sessions["idle"][session]
    gap = np.where((position == 1) & (idle == 1), 1800, gap)  # exactly 30 minutes: still the same session
    gap = np.where((position == 1) & (idle == 2), rng.integers(31 * 60, 60 * 60 + 1, n), gap)
    gap[position == 0] = 0
    offset = _group_cumsum(gap, np.bincount(session, minlength=len(sessions["visitor"])))
    with_ms = np.array([ms for _, ms, _ in site.CLOCKS])[people["clock"]][sessions["visitor"][session]]
    jitter = np.where(with_ms, rng.integers(0, 1000, n), 0)
    exact = (position == 1) & (idle == 1)
    jitter[exact] = jitter[np.flatnonzero(exact) - 1]  # keep the 30-minute gap exact to the millisecond
    return offset, jitter


def _session_starts(rng, sessions, events, *, window_days: int, backlog_days: int) -> np.ndarray:
    """Start of every session in seconds from the window start: a first visit, then gaps of hours or days."""
    visitor, ordinal = sessions["visitor"], sessions["ordinal"]
    n_visitors = int(visitor.max()) + 1 if len(visitor) else 0
    counts = np.bincount(visitor, minlength=n_visitors)
    duration = events["offset_s"][np.cumsum(np.bincount(events["session"], minlength=len(visitor))) - 1]
    days = np.arange(-backlog_days, window_days)
    day_weights = np.where(days < 0, 0.04 / max(backlog_days, 1), 0.96 / window_days if backlog_days else 1.0)
    first_day = days[_choice(rng, day_weights, n_visitors)]
    first = first_day * 86_400 + _choice(rng, HOUR_WEIGHTS, n_visitors) * 3600 + rng.integers(0, 3600, n_visitors)
    gap = 31 * 60 + np.minimum(rng.lognormal(np.log(8 * 3600), 1.3, len(visitor)), 10 * 86_400).astype(np.int64)
    step = np.where(ordinal == 0, first[visitor], np.roll(duration, 1) + gap)
    return _group_cumsum(step, counts)
