"""A small hand-built warehouse for the journey route, the report's data and the browser tests.

Two load days. dt=2025-07-02 holds:
- alice (device va): google / cpc "summer" on 07-01 09:00 (two page views, 120 s); newsletter / email "july"
  on 07-02 10:00, converting at 10:05 on /signup (html_form form-1);
- vn: google / cpc "summer" on 07-01 10:00, never converts;
- bob (vb): bing.com / cpc "brand" on 07-01 12:00, converting at 12:03; dave converts on bob's device at
  12:05 in the same session (a shared device: that session is in dave's journey, not his own device);
- carol, two devices: vc1 duckduckgo.com / organic on 07-02 18:00, converting at 18:20 on /demo
  (hubspot_form hs-2); vc2 from facebook.com on 07-02 18:10, converting at 18:15 on /signup. Her earliest
  conversion (18:15) is in the session that started later, so her converting touch is not her first
  converting session by start;
- two broken lines (not JSON; no anonymous_id).
dt=2025-07-03 holds alice's direct visit on 07-03 08:00, a repeat of event a1 (a duplicate) and an event
with a bad timestamp.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from pipeline.serve.keys import create_key
from pipeline.settings import Settings
from tests.conftest import fresh_warehouse_url
from tests.helpers import conversion, event, run, write_partition

ALICE, BOB, CAROL, DAVE = "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"
FACEBOOK = "https://www.facebook.com/"


def day_one() -> list:
    return [
        event("a1", "va", "2025-07-01 09:00:00", "/?utm_source=google&utm_medium=cpc&utm_campaign=summer"),
        event("a1b", "va", "2025-07-01 09:02:00", "/pricing"),
        event("n1", "vn", "2025-07-01 10:00:00", "/?utm_source=google&utm_medium=cpc&utm_campaign=summer"),
        event("b1", "vb", "2025-07-01 12:00:00", "/?utm_source=bing.com&utm_medium=cpc&utm_campaign=brand"),
        conversion("b2", "vb", "2025-07-01 12:03:00", "/signup", BOB, meta_type="html_form", meta_id="form-1"),
        conversion("d1", "vb", "2025-07-01 12:05:00", "/signup", DAVE, meta_type="html_form", meta_id="form-1"),
        event("a2", "va", "2025-07-02 10:00:00", "/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=july"),
        conversion("a3", "va", "2025-07-02 10:05:00", "/signup", ALICE, meta_type="html_form", meta_id="form-1"),
        event("c1", "vc1", "2025-07-02 18:00:00", "/pricing?utm_source=duckduckgo.com&utm_medium=organic"),
        event("c3", "vc2", "2025-07-02 18:10:00", "/features", referrer=FACEBOOK),
        conversion("c4", "vc2", "2025-07-02 18:15:00", "/signup", CAROL, meta_type="html_form", meta_id="form-1"),
        conversion("c2", "vc1", "2025-07-02 18:20:00", "/demo", CAROL, meta_type="hubspot_form", meta_id="hs-2"),
        "this is not json",
        {"event_id": "x1", "timestamp": "2025-07-02T11:00:00Z", "event_type": "page_view", "page_url": "https://shop.example.com/"},
    ]


def day_two() -> list:
    return [
        event("a4", "va", "2025-07-03 08:00:00", "/"),
        event("a1", "va", "2025-07-01 09:00:00", "/?utm_source=google&utm_medium=cpc&utm_campaign=summer"),
        {"event_id": "x2", "anonymous_id": "vz", "timestamp": "yesterday", "event_type": "page_view", "page_url": "https://shop.example.com/"},
    ]


def crowd(count: int = 60) -> list:
    """A third day for paging: `count` contacts u00@example.com... each converting in one direct visit on 07-04."""
    lines = []
    for n in range(count):
        lines.append(event(f"u{n}a", f"vu{n}", f"2025-07-04 09:{n % 60:02d}:00", "/"))
        lines.append(conversion(f"u{n}b", f"vu{n}", f"2025-07-04 09:{n % 60:02d}:30", "/signup", f"u{n:02d}@example.com"))
    return lines


def build_story(settings: Settings, with_crowd: bool = False) -> None:
    """Land the days and run them through the real pipeline."""
    write_partition(settings.landing, "2025-07-02", day_one())
    write_partition(settings.landing, "2025-07-03", day_two())
    if with_crowd:
        write_partition(settings.landing, "2025-07-04", crowd())
    run(settings, "2025-07-02", "2025-07-04" if with_crowd else "2025-07-03")


@contextmanager
def story_warehouse(kind: str, folder: Path, with_key: bool = False, with_crowd: bool = False):
    """(settings, API key or None) of the story's warehouse on SQLite or PostgreSQL (plus the crowd day if asked)."""
    with fresh_warehouse_url(kind, folder) as url:
        settings = Settings(warehouse_url=url, landing=folder / "landing", workspace=folder / "runs", buckets=2)
        build_story(settings, with_crowd)
        yield settings, (create_key(settings, "ui-test") if with_key else None)
