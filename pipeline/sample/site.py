"""The fictional shop the sample generator simulates: its pages, traffic sources, browsers, forms and people.

Plain data, kept apart from the simulation so the vocabulary can grow without touching the logic.
Every string here is JSON-safe (checked at import), so lines can be built with string formatting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SITE = "https://www.acme-shoes.com"
SITE_VARIANTS = (SITE, "https://WWW.Acme-Shoes.com", "https://www.acme-shoes.com:443")
"""How browsers and tags spell the site's origin: plain, upper-case host letters, explicit default port."""

HOME, CATEGORY, PRODUCT, BLOG, INFO, FUNNEL = range(6)
PAGES: tuple[tuple[str, int], ...] = (
    ("/", HOME),
    ("/men", CATEGORY),
    ("/women", CATEGORY),
    ("/kids", CATEGORY),
    ("/sale", CATEGORY),
    ("/new-arrivals", CATEGORY),
    ("/running", CATEGORY),
    ("/trail", CATEGORY),
    ("/products/aero-runner-3", PRODUCT),
    ("/products/trail-blazer-gtx", PRODUCT),
    ("/products/city-walker", PRODUCT),
    ("/products/cloud-stride-2", PRODUCT),
    ("/products/sprint-elite", PRODUCT),
    ("/products/hike-pro-mid", PRODUCT),
    ("/products/kids-bounce", PRODUCT),
    ("/products/court-classic", PRODUCT),
    ("/products/marathon-max", PRODUCT),
    ("/products/recovery-slide", PRODUCT),
    ("/blog/how-to-choose-running-shoes", BLOG),
    ("/blog/marathon-training-plan", BLOG),
    ("/blog/trail-running-for-beginners", BLOG),
    ("/blog/shoe-size-guide", BLOG),
    ("/about", INFO),
    ("/stores", INFO),
    ("/help/shipping", INFO),
    ("/help/returns", INFO),
    ("/cart", FUNNEL),
    ("/checkout", FUNNEL),
    ("/checkout/thank-you", FUNNEL),
    ("/contact", FUNNEL),
    ("/contact/thank-you", FUNNEL),
    ("/newsletter", FUNNEL),
    ("/stores/book-fitting", FUNNEL),
)
PATHS = tuple(path for path, _ in PAGES)
PAGE = {path: index for index, path in enumerate(PATHS)}

LANDING_WEIGHTS = {HOME: 0.30, CATEGORY: 0.20, PRODUCT: 0.30, BLOG: 0.15, INFO: 0.05}
BROWSE_WEIGHTS = {HOME: 0.08, CATEGORY: 0.25, PRODUCT: 0.47, BLOG: 0.08, INFO: 0.07, FUNNEL: 0.05}
BROWSE_FUNNEL_PAGES = ("/cart",)
"""The only funnel page people wander into while browsing; the others appear in conversion funnels."""

EXTRA_QUERIES = {CATEGORY: ("sort=price_asc", "page=2", "size=42"), PRODUCT: ("color=red&size=42", "color=black", "size=44")}
"""Non-tracking query parameters a page URL may carry; they are part of the page and must survive normalisation."""
FRAGMENTS = ("#reviews", "#size-guide", "#details")

PAYPAL_RETURN = "https://www.paypal.com/checkoutnow?token=8AB12345CD678901E"
"""The payment provider a checkout round-trips through; it is a referral exclusion, never a new session."""


@dataclass(frozen=True)
class Source:
    """One way a visit can start: the landing referrer and the campaign parameters on the landing URL."""

    referrer: str | None  # None: the event has no referrer field at all
    query: str = ""  # utm_* parameters, without the leading '?'
    click_id: str | None = None  # name of a click-id parameter appended with a random value
    weight: float = 1.0  # relative to the other sources of its group


def _sources(*variants: Source) -> tuple[Source, ...]:
    """A group of sources of one kind, picked by their weights inside the group."""
    return variants


_SPRING_CPC = "utm_source=google&utm_medium=cpc&utm_campaign=spring_sale&utm_content=banner1&utm_term=running+shoes"
_NEWSLETTER = "utm_source=newsletter&utm_medium=email&utm_campaign=march_newsletter&utm_content=hero_cta"
_PAID_SOCIAL = "utm_source=facebook&utm_medium=paid_social&utm_campaign=spring_sale&utm_content=carousel_2"

SOURCE_GROUPS: tuple[tuple[str, float, tuple[Source, ...]], ...] = (
    ("direct", 0.26, _sources(Source(None, weight=2), Source(""))),
    ("organic", 0.28, _sources(
        Source("https://www.google.com/", weight=20), Source("https://www.google.co.uk/", weight=3),
        Source("https://www.google.de/", weight=3), Source("https://www.bing.com/", weight=3),
        Source("https://duckduckgo.com/", weight=1.5), Source("https://search.yahoo.com/search?p=running+shoes"),
        Source("https://yandex.ru/search/?text=%D0%BA%D1%80%D0%BE%D1%81%D1%81%D0%BE%D0%B2%D0%BA%D0%B8&lr=213", weight=0.5),
        Source("https://www.baidu.com/s?wd=%E8%B7%91%E9%9E%8B", weight=0.5), Source("https://www.ecosia.org/", weight=0.5),
        Source("android-app://com.google.android.googlequicksearchbox", weight=2),
    )),
    ("social", 0.08, _sources(
        Source("https://www.facebook.com/", weight=2), Source("https://l.facebook.com/", weight=3),
        Source("https://m.facebook.com/", weight=2),
        Source("https://l.facebook.com/", click_id="fbclid"), Source("https://t.co/Xk3pQ7rZ9a"),
        Source("https://www.linkedin.com/"), Source("https://lnkd.in/eR4tY8u"),
        Source("https://www.reddit.com/r/running/comments/1b2c3d/best_daily_trainers/"),
        Source("https://www.instagram.com/"), Source("https://l.instagram.com/"),
    )),
    ("email", 0.04, _sources(
        Source("https://mail.google.com/"), Source("https://outlook.live.com/"), Source("https://mail.yahoo.com/"),
        Source("android-app://com.google.android.gm"),
    )),
    ("referral", 0.06, _sources(
        Source("https://www.runnersworld.com/gear/a63042/best-running-shoes/"),
        Source("https://www.nytimes.com/wirecutter/reviews/best-running-shoes/"),
        Source("https://www.theguardian.com/lifeandstyle/running"), Source("https://news.ycombinator.com/"),
        Source("https://trailrunner.github.io/gear-reviews/"),
    )),
    ("ai", 0.02, _sources(Source("https://chatgpt.com/"), Source("https://www.perplexity.ai/"))),
    ("display", 0.02, _sources(Source("https://googleads.g.doubleclick.net/"), Source("https://ad.doubleclick.net/"))),
    ("app", 0.02, _sources(Source("android-app://com.linkedin.android"), Source("android-app://com.slack"))),
    ("paid_search", 0.12, _sources(
        Source("https://www.google.com/", _SPRING_CPC, "gclid", weight=3),
        Source("https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=acme+shoes", "gclid"),
        Source("https://www.google.com/", click_id="gclid"),
        Source("https://www.bing.com/", "utm_source=bing&utm_medium=cpc&utm_campaign=spring_sale&utm_term=trail+running+shoes",
               "msclkid"),
        Source("https://www.bing.com/", click_id="msclkid"),
    )),
    ("newsletter", 0.05, _sources(
        Source("https://mail.google.com/", _NEWSLETTER), Source(None, _NEWSLETTER),
        Source("android-app://com.google.android.gm", "utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale"),
    )),
    ("paid_social", 0.05, _sources(
        Source("https://l.facebook.com/", _PAID_SOCIAL, "fbclid"),
        Source("https://www.instagram.com/", "utm_source=instagram&utm_medium=paid_social&utm_campaign=spring_sale", "fbclid"),
        Source("https://www.linkedin.com/", "utm_source=linkedin&utm_medium=paid_social&utm_campaign=team_orders&utm_content=video1"),
    )),
)
SOURCES: tuple[Source, ...] = tuple(source for _, _, group in SOURCE_GROUPS for source in group)
SOURCE_WEIGHTS: tuple[float, ...] = tuple(
    w * s.weight / sum(g.weight for g in group) for _, w, group in SOURCE_GROUPS for s in group)
CAMPAIGN_SOURCES: tuple[int, ...] = tuple(i for i, s in enumerate(SOURCES) if s.query or s.click_id)
"""Sources whose landing URL carries campaign parameters: the ones that can start a second visit mid-session."""
DIRECT_SOURCE = 0  # SOURCES[0]: no referrer, no parameters (bots and direct visits)


@dataclass(frozen=True)
class ConversionKind:
    """A conversion point: the funnel pages viewed before it, the page it fires on, its type and id."""

    name: str
    weight: float
    funnel: tuple[str, ...]  # page views appended after browsing, in order
    page: str | None  # None: fires on the page viewed just before (a footer form)
    conversion_type: str
    conversion_id: str
    via_paypal: bool = False


CONVERSION_KINDS: tuple[ConversionKind, ...] = (
    ConversionKind("checkout", 0.30, ("/cart", "/checkout"), "/checkout/thank-you", "custom", "purchase"),
    ConversionKind("checkout_paypal", 0.10, ("/cart", "/checkout", "/checkout/thank-you"), "/checkout/thank-you",
                   "custom", "purchase", via_paypal=True),
    ConversionKind("newsletter", 0.25, (), None, "hubspot_form", "638e-2340-45773f-00252"),
    ConversionKind("contact", 0.20, ("/contact",), "/contact/thank-you", "html_form", "contact-us"),
    ConversionKind("fitting", 0.15, ("/stores", "/stores/book-fitting"), "/stores/book-fitting", "hubspot_form",
                   "a91c-1177-5b20e4-00413"),
)

HUMAN_AGENTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36", 0.26),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 "
     "Mobile/15E148 Safari/604.1", 0.22),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Mobile Safari/537.36", 0.16),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 "
     "Safari/605.1.15", 0.08),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 "
     "Safari/537.36", 0.07),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36 "
     "Edg/133.0.0.0", 0.07),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0", 0.04),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 "
     "Chrome/125.0.0.0 Mobile Safari/537.36", 0.04),
    ("Mozilla/5.0 (iPad; CPU OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 "
     "Safari/604.1", 0.03),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
     "[LinkedInApp]/9.30.1510", 0.02),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0", 0.01),
)
BOT_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/133.0.6943.53 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.32.3",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/133.0.0.0 Safari/537.36",
)
AGENTS: tuple[str, ...] = tuple(ua for ua, _ in HUMAN_AGENTS) + BOT_AGENTS
BOT_PATTERN = re.compile(r"bot|crawler|spider|python-requests|headlesschrome", re.IGNORECASE)
"""What makes a user agent a bot in this sample (each BOT_AGENTS entry matches, no HUMAN_AGENTS entry does)."""

CLOCKS: tuple[tuple[int, bool, float], ...] = (
    (0, False, 0.80),  # UTC offset in minutes, milliseconds shown, share of visitors
    (0, True, 0.08),
    (60, False, 0.04),
    (120, False, 0.03),
    (-300, False, 0.03),
    (-300, True, 0.01),
    (330, True, 0.01),
)
"""How trackers write timestamps: mostly UTC with Z, some in the device's zone, some with milliseconds."""

FIRST_NAMES = ("anna", "ben", "carla", "david", "elena", "felix", "greta", "hugo", "ines", "jonas", "kim", "leon",
               "mia", "nora", "oscar", "paula", "quinn", "rosa", "sam", "tara", "umar", "vera", "wen", "yusuf", "zoe")
LAST_NAMES = ("schmidt", "mueller", "garcia", "rossi", "dubois", "smith", "jones", "nowak", "silva", "kowalski",
              "jensen", "nakamura", "okafor", "petrov", "larsen", "moreau", "costa", "weber", "brown", "wilson")
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "web.de", "gmx.de", "icloud.com", "proton.me", "orange.fr",
                 "example.com", "acme-corp.example")


def _assert_json_safe() -> None:
    """Guard the fast serialiser: no string here may need escaping inside a JSON string."""
    strings = [*SITE_VARIANTS, *PATHS, *FRAGMENTS, PAYPAL_RETURN, *AGENTS, *FIRST_NAMES, *LAST_NAMES, *EMAIL_DOMAINS]
    strings += [q for queries in EXTRA_QUERIES.values() for q in queries]
    strings += [s.referrer or "" for s in SOURCES] + [s.query for s in SOURCES]
    strings += [v for k in CONVERSION_KINDS for v in (*k.funnel, k.page or "", k.conversion_type, k.conversion_id)]
    unsafe = [s for s in strings if not s.isascii() or any(c in s for c in '"\\') or any(ord(c) < 32 for c in s)]
    assert not unsafe, f"sample vocabulary needs JSON escaping: {unsafe}"
    assert not any(BOT_PATTERN.search(ua) for ua, _ in HUMAN_AGENTS) and all(BOT_PATTERN.search(b) for b in BOT_AGENTS)


_assert_json_safe()
