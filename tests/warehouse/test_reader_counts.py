"""The reader's precomputed tables stay equal to a recomputation from contact_sessions and conversions.

`contact_conversions` (built per contact by the transform) and `reader_pair_counts` with its ledgers
(kept by publish) are checked against a literal recomputation after incremental runs in any order,
reruns, a full refresh and an erasure, and on a hand-worked example.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date

import pandas as pd
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import get_engine
from pipeline.warehouse.reader_counts import recount
from tests.conftest import examples
from tests.helpers import SITE, conversion, event, run, table, write_partition
from tests.runs.test_incremental import deliveries, write_landing

ROLES = {"first": "is_first", "converting": "is_converting", "assist": "is_assist", "after": "is_after"}
CONVERSION_COLUMNS = ("conversion_type", "conversion_id", "conversion_page")


def expected_contact_conversions(settings: Settings) -> pd.DataFrame:
    """Every conversion of a contact, with its pair's key, roles and attributes, and whether it is the first
    conversion (by time, then event id) of its pair with its type / id / page: worked out row by row."""
    pairs = {(r.email, r.session_id): r for r in table(settings, "contact_sessions").itertuples()}
    conversions = table(settings, "conversions").sort_values(["email", "session_id", "timestamp", "event_id"])
    rows, seen = [], set()
    for c in conversions.itertuples():
        pair = pairs[(c.email, c.session_id)]
        row = {"email": c.email, "event_id": c.event_id, "session_id": c.session_id, "session_timestamp": pair.session_timestamp}
        row.update({role: bool(getattr(pair, role)) for role in t.ROLES})
        row.update({name: getattr(pair, name) for name in t.SESSION_FILTERS})
        row.update(conversion_timestamp=c.timestamp, conversion_type=c.conversion_type, conversion_id=c.conversion_id,
                   conversion_page=c.conversion_page)
        for column, flag in t.CONVERSION_FILTERS.items():
            key = (c.email, c.session_id, column, getattr(c, column) if pd.notna(getattr(c, column)) else None)
            row[flag] = key not in seen
            seen.add(key)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c.name for c in t.contact_conversions.columns])
    return frame.sort_values(["email", "event_id"]).reset_index(drop=True)


def expected_counts(settings: Settings) -> Counter:
    """SPEC section 11's matching pairs of every single-filter request, per UTC day of the session, counted one by one."""
    counts: Counter = Counter()
    conversions = table(settings, "conversions")
    for pair in table(settings, "contact_sessions").itertuples():
        scopes = ["any"] + [scope for scope, role in ROLES.items() if getattr(pair, role)]
        day = pair.session_timestamp.date()
        values = [("", "")] + [(name, getattr(pair, name)) for name in t.SESSION_FILTERS]
        own = conversions[(conversions["email"] == pair.email) & (conversions["session_id"] == pair.session_id)]
        values += [(column, value) for column in CONVERSION_COLUMNS for value in own[column].dropna().unique()]
        for scope in scopes:
            for dim, value in values:
                counts[(dim, value, scope, day)] += 1
    return counts


def stored_counts(settings: Settings) -> Counter:
    rows = table(settings, "reader_pair_counts")
    return Counter({(r.dim, r.value, r.scope, r.day): int(r.pairs) for r in rows.itertuples()})


def assert_precomputed_tables_exact(settings: Settings) -> None:
    stored = table(settings, "contact_conversions", order_by=["email", "event_id"])
    pd.testing.assert_frame_equal(stored, expected_contact_conversions(settings), check_dtype=False)
    assert stored_counts(settings) == expected_counts(settings)
    with get_engine(settings.warehouse_url).connect() as conn:
        assert Counter(recount(conn)) == stored_counts(settings)
    ledger = table(settings, "reader_counted_pairs")
    pairs = table(settings, "contact_sessions")
    assert ledger[["email", "session_id"]].equals(pairs[["email", "session_id"]])
    assert ledger["day"].tolist() == pairs["session_timestamp"].dt.date.tolist()
    assert sorted(table(settings, "reader_counted_conversions")["event_id"]) == sorted(stored["event_id"])


def test_counts_after_runs_reruns_and_an_erasure(settings):
    site = [event("a1", "va", "2025-03-01 09:00:00", "/?utm_source=google&utm_medium=cpc"),
            conversion("a2", "va", "2025-03-01 09:05:00", "/thanks", "a@x.co", meta_type="form", meta_id="f1"),
            conversion("a3", "va", "2025-03-01 09:06:00", "/thanks", "a@x.co", meta_type="form", meta_id="f2"),
            event("b1", "vb", "2025-03-01 23:50:00", "/pricing")]
    write_partition(settings.landing, "2025-03-01", site)
    write_partition(settings.landing, "2025-03-02", [conversion("b2", "vb", "2025-03-02 00:10:00", "/demo", "b@x.co"),
                                                     event("a4", "va", "2025-03-02 10:00:00", "/blog")])
    run(settings, "2025-03-01")
    assert_precomputed_tables_exact(settings)
    run(settings, "2025-03-02")
    run(settings, "2025-03-01")  # a rerun of the first day changes nothing
    assert_precomputed_tables_exact(settings)
    counts, day1, day2 = stored_counts(settings), date(2025, 3, 1), date(2025, 3, 2)
    assert counts[("conversion_type", "form", "converting", day1)] == 1  # a's session holds two forms: one pair
    assert counts[("conversion_id", "f1", "any", day1)] == counts[("conversion_id", "f2", "first", day1)] == 1
    assert counts[("", "", "converting", day1)] == 2  # b's session started on the 1st and converted on the 2nd
    assert counts[("", "", "any", day2)] == counts[("", "", "after", day2)] == counts[("landing_page", SITE + "/blog", "after", day2)] == 1
    assert counts[("source", "google", "first", day1)] == counts[("medium", "cpc", "converting", day1)] == 1
    assert counts[("source", "direct", "any", day1)] == 1 and ("source", "direct", "assist", day1) not in counts
    # a's first session: 3 scopes (any, first, converting) × (7 + 4 conversion values: form, f1, f2, /thanks);
    # b's: 3 scopes × (7 + 3); a's second: 2 scopes (any, after) × 7
    assert sum(counts.values()) == 3 * (7 + 4) + 3 * (7 + 3) + 2 * 7
    from pipeline.runs.forget import forget

    forget(settings, "a@x.co")
    assert_precomputed_tables_exact(settings)
    assert not [key for key in stored_counts(settings) if key[0] == "conversion_type" and key[1] == "form"]


@hsettings(max_examples=examples(6, ci=8), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=deliveries(), buckets=st.sampled_from([1, 2, 3]), erased=st.sampled_from(["a@x.co", "c@x.co"]))
def test_incremental_runs_reruns_and_erasures_keep_the_precomputed_tables_exact(tmp_path_factory, case, buckets, erased):
    rows, order, _ = case  # the erasure is drawn here, after the runs
    root = tmp_path_factory.mktemp("counts")
    write_landing(root / "landing", rows)
    incremental = Settings(warehouse_url=f"sqlite:///{root / 'inc.db'}", landing=root / "landing", workspace=root / "runs", buckets=buckets)
    full = Settings(warehouse_url=f"sqlite:///{root / 'full.db'}", landing=root / "landing", workspace=root / "runs", buckets=2)
    for day in order:
        run(incremental, day.isoformat())
    assert_precomputed_tables_exact(incremental)
    days = sorted(set(order))
    run(full, days[0].isoformat(), days[-1].isoformat(), full_refresh=True)
    for name in ("contact_conversions", "reader_pair_counts", "reader_counted_pairs", "reader_counted_conversions"):
        pd.testing.assert_frame_equal(table(incremental, name), table(full, name), check_dtype=False, obj=name)
    from pipeline.runs.forget import forget

    forget(incremental, erased)
    assert_precomputed_tables_exact(incremental)
    shutil.rmtree(root, ignore_errors=True)
