"""The seed document's response example, rebuilt from raw events and checked field by field.

The seed contradicts itself: it lists 3 sessions but says total_sessions 5, conversion_rate_percent 20,
avg_days_between_sessions 1.04 and avg_session_duration_seconds 660, and its interested_pages count
pages that none of the 3 sessions has. SPEC section 7 wins: every figure below is worked out by hand
from the 3 sessions the example shows.
"""

from __future__ import annotations

from tests.helpers import contact_summary, conversion, event, run, write_partition

SITE = "https://testdomain.com"
EMAIL = "jane.doe@example.com"
PAID = "utm_source=paid&utm_medium=cpc&utm_campaign=campaign1&utm_term=running+shoes"


def seed_events() -> list[dict]:
    internal = SITE + "/landing"
    return [
        event("e01", "v1", "2025-03-01 10:00:00", f"{SITE}/landing?{PAID}&utm_content=banner1"),
        event("e02", "v1", "2025-03-01 10:04:00", f"{SITE}/products", referrer=internal),
        event("e03", "v1", "2025-03-01 10:08:00", f"{SITE}/cart", referrer=SITE + "/products"),
        event("e04", "v1", "2025-03-01 10:11:00", f"{SITE}/done", referrer=SITE + "/cart"),
        event("e05", "v1", "2025-03-04 13:00:00", f"{SITE}/landing?{PAID}&utm_content=banner2"),
        event("e06", "v1", "2025-03-04 13:05:00", f"{SITE}/checkout", referrer=internal),
        conversion(
            "e07", "v1", "2025-03-04 13:09:00", f"{SITE}/order-confirmed", " Jane.Doe@Example.com ",
            meta_type="hubspot_form", meta_id="638e-2340-45773f-00252", referrer=SITE + "/checkout",
        ),
        event("e08", "v1", "2025-03-05 14:00:00", f"{SITE}/home?utm_source=organic&utm_medium=organic&utm_campaign=campaign1&utm_term=running%20shoes"),
        event("e09", "v1", "2025-03-05 14:10:00", f"{SITE}/checkout", referrer=SITE + "/home"),
        event("e10", "v1", "2025-03-05 14:16:00", f"{SITE}/done", referrer=SITE + "/checkout"),
    ]


FIRST = {
    "timestamp": "2025-03-01 10:00:00",
    "source": "paid",
    "medium": "cpc",
    "content": "banner1",
    "campaign": "campaign1",
    "term": "running shoes",
    "landing_page": "https://testdomain.com/landing",
    "exit": {"exit_page": "https://testdomain.com/done", "previous_page": "https://testdomain.com/cart", "timestamp": "2025-03-01 10:11:00"},
    "session_duration": 660,
}
CONVERTING = {
    "timestamp": "2025-03-04 13:00:00",
    "source": "paid",
    "medium": "cpc",
    "content": "banner2",
    "campaign": "campaign1",
    "term": "running shoes",
    "landing_page": "https://testdomain.com/landing",
    "conversion": {
        "email": EMAIL,
        "timestamp": "2025-03-04 13:09:00",
        "conversion_page": "https://testdomain.com/order-confirmed",
        "previous_page": "https://testdomain.com/checkout",
        "conversion_meta": {"type": "hubspot_form", "id": "638e-2340-45773f-00252"},
    },
    "session_duration": 540,
}
RECENT = {
    "timestamp": "2025-03-05 14:00:00",
    "source": "organic",
    "medium": "organic",
    "content": "none",
    "campaign": "campaign1",
    "term": "running shoes",
    "landing_page": "https://testdomain.com/home",
    "exit": {"exit_page": "https://testdomain.com/done", "previous_page": "https://testdomain.com/checkout", "timestamp": "2025-03-05 14:16:00"},
    "session_duration": 960,
}
EXPECTED = {
    "total_sessions": 3,  # seed: 5, but it lists 3 sessions
    "total_conversions": 1,
    "conversion_rate_percent": 33.33,  # 100 × 1 / 3
    "conversion_dates": ["2025-03-04 13:09:00"],
    "days_since_last_conversion": 39,  # as of 2025-04-13 00:00: 39 days 10 h 51 min
    "is_repeat_converter": False,
    "avg_days_between_conversions": None,
    "avg_days_between_sessions": 2.08,  # (4 d 4 h) / 2 gaps = 50 h = 2.0833 days
    "avg_session_duration_seconds": 720,  # (660 + 540 + 960) / 3
    "days_to_convert": 3,  # 2025-03-01 10:00 → 2025-03-04 13:09
    "user_journey": [FIRST, CONVERTING, RECENT],
    "interested_pages": {
        "landing_pages": {"https://testdomain.com/landing": 2, "https://testdomain.com/home": 1},
        "conversion_pages": {"https://testdomain.com/order-confirmed": 1},
        "exit_pages": {"https://testdomain.com/done": 2},
        "previous_conversion_pages": {"https://testdomain.com/checkout": 1},
        "previous_exit_pages": {"https://testdomain.com/cart": 1, "https://testdomain.com/checkout": 1},
    },
    "first_touch": FIRST,
    "converting_touch": CONVERTING,
    "recent_touch": RECENT,
}


def test_seed_response_example_field_by_field(settings):
    write_partition(settings.landing, "2025-03-05", seed_events())
    run(settings, "2025-03-05")
    summary = contact_summary(settings, EMAIL, as_of="2025-04-13 00:00:00")
    for key, value in EXPECTED.items():
        assert summary[key] == value, key
    assert list(summary) == list(EXPECTED)
    assert list(summary["user_journey"][1]) == list(CONVERTING)
