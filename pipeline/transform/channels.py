"""GA4 default channel group (reference/ga4_channel_rules.md), plus Plausible's "AI Assistants" channel."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from pipeline.transform.referrers import ga4_source_categories, lookup_host, public_suffix

PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$", re.S)
SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$", re.S)
DIRECT_SOURCES = frozenset({"direct", "(direct)"})
UNSET_MEDIUMS = frozenset({"none", "(none)", "(not set)", ""})
DISPLAY_MEDIUMS = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIUMS = frozenset({"social", "social-network", "social-media", "sm", "social network", "social media"})
REFERRAL_MEDIUMS = frozenset({"referral", "app", "link"})
EMAIL_TAGS = frozenset({"email", "e-mail", "e_mail", "e mail"})

# Chatbot names GA4's sheet lacks, from Plausible's @custom_source_categories (plausible/analytics
# lib/plausible/ingestion/acquisition.ex): SPEC section 5 adds Plausible's AI Assistants channel, and
# chatbots tag their links (`utm_source=chatgpt.com`). Every other tagged source goes by GA4's sheet alone.
AI_SOURCE_NAMES = frozenset({
    "chatgpt", "claude", "perplexity", "phind", "deepseek", "copilot", "grok", "gemini", "google gemini", "openai",
})  # fmt: skip


@lru_cache(maxsize=1 << 14)
def source_category(source: str) -> str | None:
    """Category of a tagged (UTM or click-id) source, as SPEC section 5 says: GA4's list by the value, then
    by the name without the public suffix (`google.com` → `google`, `amazon.de` → `amazon`; `mail.google.com`
    → `mail.google`, not in the list). Chatbots (a name above, or a host the referrer table classes as an AI
    assistant) are AI, for the AI Assistants channel."""
    value = (source or "").strip().lower()
    names = ga4_source_categories()
    if value in names:
        return names[value]
    if value in AI_SOURCE_NAMES:
        return "AI"
    if "." not in value or " " in value:
        return None
    klass = lookup_host(value)
    if klass is not None and klass.name == "ai":
        return "AI"
    return names.get(_without_public_suffix(value))


def _without_public_suffix(host: str) -> str:
    suffix = public_suffix(host)
    return host[: -len(suffix) - 1] if suffix and host.endswith("." + suffix) else host


Rule = Callable[[str, str, str, str], bool]
CHANNEL_RULES: tuple[tuple[str, Rule], ...] = (
    ("Direct", lambda s, m, c, k: s in DIRECT_SOURCES and m in UNSET_MEDIUMS),
    ("Cross-network", lambda s, m, c, k: "cross-network" in c),
    ("Paid Shopping", lambda s, m, c, k: (k == "SHOPPING" or _shop(c)) and _paid(m)),
    ("Paid Search", lambda s, m, c, k: k == "SEARCH" and _paid(m)),
    ("Paid Social", lambda s, m, c, k: k == "SOCIAL" and _paid(m)),
    ("Paid Video", lambda s, m, c, k: k == "VIDEO" and _paid(m)),
    ("Display", lambda s, m, c, k: m in DISPLAY_MEDIUMS),
    ("Paid Other", lambda s, m, c, k: _paid(m)),
    ("Organic Shopping", lambda s, m, c, k: k == "SHOPPING" or _shop(c)),
    ("Organic Social", lambda s, m, c, k: k == "SOCIAL" or m in SOCIAL_MEDIUMS),
    ("Organic Video", lambda s, m, c, k: k == "VIDEO" or "video" in m),
    ("AI Assistants", lambda s, m, c, k: k == "AI"),  # where Plausible's get_channel_lowered puts it
    ("Organic Search", lambda s, m, c, k: k == "SEARCH" or m == "organic"),
    ("Referral", lambda s, m, c, k: m in REFERRAL_MEDIUMS),
    ("Email", lambda s, m, c, k: s in EMAIL_TAGS or m in EMAIL_TAGS),
    ("Affiliates", lambda s, m, c, k: m == "affiliate"),
    ("Audio", lambda s, m, c, k: m == "audio"),
    ("SMS", lambda s, m, c, k: s == "sms" or m == "sms"),
    ("Mobile Push Notifications",
     lambda s, m, c, k: m.endswith("push") or "mobile" in m or "notification" in m or s == "firebase"),
)  # fmt: skip


def _paid(medium: str) -> bool:
    """GA4's paid-medium regex."""
    return PAID_MEDIUM.fullmatch(medium) is not None


def _shop(campaign: str) -> bool:
    """GA4's shopping-campaign regex."""
    return SHOPPING_CAMPAIGN.fullmatch(campaign) is not None


def default_channel(source: str, medium: str, campaign: str, category: str | None) -> str:
    """First GA4 rule that matches (case-insensitive); `Unassigned` when none does."""
    s, m, c = ((v or "").strip().lower() for v in (source, medium, campaign))
    k = (category or "").upper().removeprefix("SOURCE_CATEGORY_")
    return next((name for name, rule in CHANNEL_RULES if rule(s, m, c, k)), "Unassigned")
