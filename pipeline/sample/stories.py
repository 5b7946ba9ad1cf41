"""Hand-written journeys the sample always contains, so every edge case of sessions, attribution and identity
is present whatever the size or seed (the simulation has them too, but only by chance).

Each story spans the first three load days of the window; times are UTC, `tz` only changes how the
timestamp is written. `late` delays an event's arrival by whole days (a later `dt` partition).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from pipeline.sample import site as site
from pipeline.sample.lines import STORY_IDS, IdMaker, event_line, zone_suffix

STORY_DAYS = 3
PREVIOUS = object()  # referrer marker: the page viewed just before (internal navigation)
AGENT = {name: ua for name, ua in zip(
    ("chrome_win", "iphone", "android", "safari_mac", "chrome_mac", "edge", "firefox", "samsung", "ipad", "linkedin_app"),
    (ua for ua, _ in site.HUMAN_AGENTS))}
BOT = dict(zip(("googlebot", "googlebot_mobile", "bingbot", "ahrefs", "python_requests", "headless"), site.BOT_AGENTS))
GCLID = "EAIaIQobChMI8k3m2vW5hAMVgFpHAR0pWw1aEAAYASAAEgJx_fD_BwE"
FBCLID = "IwAR2xQ9vT7mK4pL0sN8dR6fW3yZ1bC5hJ"
MSCLKID = "4f1c2a9e8b7d4c3aa1f0e5d6c7b8a9f0"


@dataclass(frozen=True)
class Step:
    """One event of a story."""

    day: int
    time: str  # "HH:MM:SS" or "HH:MM:SS.mmm", UTC
    page: str  # path on the site, or a full URL
    referrer: object = PREVIOUS  # PREVIOUS, None (no field), or a string
    email: str | None = None  # set on conversions
    kind: str = ""  # conversion kind name (site.CONVERSION_KINDS)
    tz: int = 0  # offset in minutes the timestamp is written in
    late: int = 0  # days of arrival delay


@dataclass(frozen=True)
class StoryEvent:
    """A written story event with what the generator needs to place and count it."""

    line: str
    ts_ms: int
    load_offset: int  # load day relative to the window start
    is_conversion: bool
    is_bot: bool
    anonymous_id: str


def _pv(day, time, page, referrer=PREVIOUS, *, tz=0, late=0) -> Step:
    """A page view."""
    return Step(day, time, page, referrer, tz=tz, late=late)


def _cv(day, time, page, email, kind, referrer=PREVIOUS, *, tz=0, late=0) -> Step:
    """A conversion."""
    return Step(day, time, page, referrer, email, kind, tz, late)


STORIES: tuple[tuple[str, str, tuple[Step, ...]], ...] = (
    ("repeat converter over three days, email spelled three ways", AGENT["chrome_win"], (
        _pv(0, "10:00:00", "/", "https://www.google.com/"), _pv(0, "10:01:10", "/products/aero-runner-3"),
        _pv(0, "10:03:40", "/cart"), _pv(0, "10:05:02", "/checkout"),
        _cv(0, "10:06:30", "/checkout/thank-you", "maria.garcia@example.com", "checkout"),
        _pv(1, "19:30:00", "/sale?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale&utm_content=hero_cta",
            "https://mail.google.com/", tz=60),
        _pv(1, "19:31:05", "/products/trail-blazer-gtx", tz=60),
        _cv(1, "19:33:00", "/products/trail-blazer-gtx", "  Maria.Garcia@Example.com ", "newsletter", tz=60),
        _pv(2, "08:15:00", "/contact", None),
        _cv(2, "08:17:30", "/contact/thank-you", "MARIA.GARCIA@EXAMPLE.COM", "contact"),
    )),
    ("second device, desktop: paid Bing click", AGENT["firefox"], (
        _pv(0, "12:00:00", "/products/city-walker?color=red&size=42&utm_source=bing&utm_medium=cpc"
            f"&utm_campaign=spring_sale&msclkid={MSCLKID}", "https://www.bing.com/"),
        _pv(0, "12:02:20", "/products/city-walker#reviews"),
        _cv(0, "12:04:00", "/products/city-walker#reviews", "tom.baker@example.org", "newsletter"),
    )),
    ("second device, phone: LinkedIn app, books a fitting", AGENT["iphone"], (
        _pv(1, "07:45:00", "/", "android-app://com.linkedin.android", tz=-300), _pv(1, "07:46:10", "/stores", tz=-300),
        _pv(1, "07:48:00", "/stores/book-fitting", tz=-300),
        _cv(1, "07:50:30", "/stores/book-fitting", "Tom.Baker@example.org", "fitting", tz=-300),
    )),
    ("shared device: two people convert on different days", AGENT["ipad"], (
        _pv(0, "20:00:00", "/kids", "https://www.facebook.com/"), _pv(0, "20:04:00", "/products/kids-bounce"),
        _cv(0, "20:06:00", "/products/kids-bounce", "anna.schmidt@web.de", "newsletter"),
        _pv(2, "21:10:00", f"https://WWW.Acme-Shoes.com/products/marathon-max?gclid={GCLID}", "https://www.google.de/",
            tz=60),
        _pv(2, "21:12:00", "/cart", tz=60), _pv(2, "21:13:30", "/checkout", tz=60),
        _cv(2, "21:15:00", "/checkout/thank-you", "jonas.schmidt@web.de", "checkout", tz=60),
    )),
    ("campaign change mid-visit: a Facebook ad ten minutes after a Google ad", AGENT["android"], (
        _pv(1, "09:00:00", "/sale?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&utm_content=banner1"
            f"&utm_term=running+shoes&gclid={GCLID}", "https://www.google.com/"),
        _pv(1, "09:02:00", "/products/sprint-elite"),
        _pv(1, "09:12:00", "/products/sprint-elite?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting"
            f"&utm_content=carousel_2&fbclid={FBCLID}", "https://l.facebook.com/"),
        _cv(1, "09:14:30", "/products/sprint-elite?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting"
            f"&utm_content=carousel_2&fbclid={FBCLID}", "li.wei@example.com", "newsletter"),
    )),
    ("PayPal round trip before the checkout conversion", AGENT["safari_mac"], (
        _pv(1, "14:00:00", "/products/hike-pro-mid", "https://www.perplexity.ai/"), _pv(1, "14:03:00", "/cart"),
        _pv(1, "14:04:10", "/checkout"), _pv(1, "14:09:00.120", "/checkout/thank-you", site.PAYPAL_RETURN),
        _cv(1, "14:09:05.480", "/checkout/thank-you", "olivia.jones@gmail.com", "checkout_paypal", site.PAYPAL_RETURN),
    )),
    ("idle exactly 30 minutes (same session), then 30 minutes and 1 second (new session)", AGENT["edge"], (
        _pv(0, "12:00:00", "/blog/marathon-training-plan", "https://chatgpt.com/"),
        _pv(0, "12:30:00", "/products/marathon-max"), _pv(0, "13:00:01", "/products/aero-runner-3"),
        _pv(0, "13:01:00", "/contact"),
        _cv(0, "13:02:00", "/contact/thank-you", "noah.williams@outlook.com", "contact"),
    )),
    ("conversion as the first event of a session: the form sent 45 minutes later", AGENT["samsung"], (
        _pv(2, "15:00:00", "/newsletter", "https://www.instagram.com/"),
        _cv(2, "15:45:00", "/newsletter", "emma.brown@yahoo.com", "newsletter"),
    )),
    ("session across midnight UTC, second half in the next partition", AGENT["chrome_mac"], (
        _pv(0, "23:50:00", "/", "https://t.co/Xk3pQ7rZ9a", tz=-300), _pv(0, "23:55:30", "/products/cloud-stride-2"),
        _pv(1, "00:05:10", "/cart"), _pv(1, "00:07:00", "/checkout"),
        _cv(1, "00:09:30", "/checkout/thank-you", "lucas.martin@orange.fr", "checkout"),
    )),
    ("late tail: the rest of a session (with its conversion) arrives two days later", AGENT["iphone"], (
        _pv(0, "18:00:00", "/running", "https://www.reddit.com/r/running/"),
        _pv(0, "18:02:00", "/products/aero-runner-3", late=2),
        _cv(0, "18:05:00", "/products/aero-runner-3", "sofia.rossi@libero.it", "newsletter", late=2),
    )),
    ("late whole session with millisecond timestamps and an explicit :443", AGENT["chrome_win"], (
        _pv(1, "06:00:00.250", "/", "https://duckduckgo.com/", late=1),
        _pv(1, "06:01:30.500", "https://www.acme-shoes.com:443/products/recovery-slide", late=1),
    )),
    ("Gmail app newsletter click, odd URL spellings, an empty referrer", AGENT["android"], (
        _pv(1, "11:00:00", "/sale?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale",
            "android-app://com.google.android.gm", tz=330),
        _pv(1, "11:01:00", "https://WWW.Acme-Shoes.com:443/products/court-classic#reviews", tz=330),
        _pv(1, "11:03:00", "/help/shipping", "", tz=330),
    )),
    ("referral from a GitHub Pages blog", AGENT["linkedin_app"], (
        _pv(2, "17:20:00", "/products/trail-blazer-gtx?color=black", "https://trailrunner.github.io/gear-reviews/"),
        _pv(2, "17:22:00", "/trail"),
    )),
    ("Googlebot crawl", BOT["googlebot"], tuple(
        _pv(0, f"03:00:{2 * i:02d}", path, None) for i, path in enumerate(
            ("/", "/men", "/women", "/products/aero-runner-3", "/blog/shoe-size-guide")))),
    ("AhrefsBot", BOT["ahrefs"], (_pv(1, "04:10:00", "/", None), _pv(1, "04:10:03", "/sale", None))),
    ("python-requests scraper", BOT["python_requests"], (_pv(1, "13:00:00", "/products/sprint-elite", None),)),
    ("headless browser", BOT["headless"], (_pv(2, "02:00:00", "/", None), _pv(2, "02:00:02", "/cart"))),
    ("bingbot", BOT["bingbot"], (_pv(2, "05:00:00", "/", None),)),
)


def story_events(start: date, ids: IdMaker) -> list[StoryEvent]:
    """Every story event, written as JSON lines with ids from `ids`."""
    out: list[StoryEvent] = []
    number = 0
    for visitor, (_, agent, steps) in enumerate(STORIES):
        anonymous_id = ids.visitor(STORY_IDS + visitor)
        previous = None
        for step in steps:
            url = step.page if step.page.startswith("http") else site.SITE + step.page
            instant = _instant(start, step)
            event = {"event_id": ids.event(STORY_IDS + number), "anonymous_id": anonymous_id,
                     "timestamp": _written(instant, step.tz), "event_type": "conversion" if step.email else "page_view",
                     "page_url": url}
            referrer = previous if step.referrer is PREVIOUS else step.referrer
            if referrer is not None:
                event["referrer"] = referrer
            if step.email:
                kind = next(k for k in site.CONVERSION_KINDS if k.name == step.kind)
                event |= {"email": step.email, "conversion_type": kind.conversion_type, "conversion_id": kind.conversion_id}
            event["user_agent"] = agent
            ts_ms = round(instant.timestamp() * 1000)
            out.append(StoryEvent(event_line(event), ts_ms, (instant.date() - start).days + step.late,
                                  bool(step.email), bool(site.BOT_PATTERN.search(agent)), anonymous_id))
            previous, number = url, number + 1
    return out


def _instant(start: date, step: Step) -> datetime:
    """The UTC instant of a step."""
    clock = datetime.strptime(step.time, "%H:%M:%S.%f" if "." in step.time else "%H:%M:%S").time()
    return datetime.combine(start + timedelta(days=step.day), clock, tzinfo=timezone.utc)


def _written(instant: datetime, tz: int) -> str:
    """The instant as a tracker in zone `tz` writes it, with milliseconds only when it has them."""
    local = instant + timedelta(minutes=tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if instant.microsecond:
        text += f".{instant.microsecond // 1000:03d}"
    return text + zone_suffix(tz)
