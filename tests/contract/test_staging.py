"""Staging: the raw event contract, quarantine reasons, normalisation, dedupe and the counting invariant."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from pipeline.contract.landing import read_partition
from pipeline.contract.staging import stage_lines
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from tests.helpers import conversion, event, run, scalar, table, write_partition

DAY = date(2025, 3, 1)
GOOD = event("ok-1", "v1", "2025-03-01 10:00:00")


def stage(*lines, day: date = DAY):
    """Stage raw lines (dicts are JSON-encoded) as one file of one partition."""
    raw = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    frame = pd.DataFrame({"source_file": "dt=2025-03-01/a.jsonl", "line_number": range(1, len(raw) + 1), "raw": raw})
    return stage_lines(frame, day)


def reason_of(line) -> str | None:
    """The quarantine reason of one line, or None when it was loaded."""
    staged = stage(line)
    assert len(staged.events) + len(staged.quarantine) == 1
    return None if staged.quarantine.empty else staged.quarantine["reason"].iloc[0]


def without(field: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != field}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "invalid JSON"),
        ('{"event_id": "x"', "invalid JSON"),
        ("[1, 2, 3]", "not a JSON object"),
        ('"just a string"', "not a JSON object"),
        (without("event_id"), "missing required field event_id"),
        (without("anonymous_id"), "missing required field anonymous_id"),
        (without("timestamp"), "missing required field timestamp"),
        (without("event_type"), "missing required field event_type"),
        (without("page_url"), "missing required field page_url"),
        ({**GOOD, "event_id": None}, "missing required field event_id"),
        ({**GOOD, "event_id": 12}, "event_id must be a string"),
        ({**GOOD, "event_id": "  "}, "event_id is blank"),
        ({**GOOD, "anonymous_id": ""}, "anonymous_id is empty"),
        ({**GOOD, "referrer": 5}, "referrer must be a string or null"),
        ({**GOOD, "timestamp": "2025-03-01T10:00:00"}, "timestamp without a zone offset"),
        ({**GOOD, "timestamp": "2025-03-01 10:00:00"}, "timestamp without a zone offset"),
        ({**GOOD, "timestamp": "2025-03-01"}, "timestamp without a zone offset"),
        ({**GOOD, "timestamp": "2025-03"}, "timestamp without a zone offset"),
        ({**GOOD, "timestamp": "2025-03-01T10:00-05"}, None),
        ({**GOOD, "timestamp": "2025-03-01t10:00:00z"}, None),
        ({**GOOD, "timestamp": "yesterday"}, "unparseable timestamp"),
        ({**GOOD, "timestamp": "2025-13-01T10:00:00Z"}, "unparseable timestamp"),
        ({**GOOD, "timestamp": 1740823200}, "timestamp must be a string"),
        ({**GOOD, "event_type": "click"}, "unknown event_type"),
        ({**GOOD, "page_url": "ftp://files.example.com/a"}, "page_url is not an absolute http(s) URL"),
        ({**GOOD, "page_url": "/relative/path"}, "page_url is not an absolute http(s) URL"),
        ({**GOOD, "page_url": "javascript:alert(1)"}, "page_url is not an absolute http(s) URL"),
        ({**GOOD, "event_type": "conversion"}, "conversion without a valid email"),
        ({**GOOD, "event_type": "conversion", "email": None}, "conversion without a valid email"),
        ({**GOOD, "event_type": "conversion", "email": "not-an-email"}, "conversion without a valid email"),
        ({**GOOD, "event_type": "conversion", "email": "a@b"}, "conversion without a valid email"),
        ({**GOOD, "timestamp": "2025-03-03T00:00:00Z"}, "timestamp later than the end of the day after its load day"),
        ({**GOOD, "timestamp": "2025-03-03T03:30:00+02:00"}, "timestamp later than the end of the day after its load day"),
    ],
)
def test_contract_breach_is_quarantined_with_its_reason(line, reason):  # None: loaded
    assert reason_of(line) == reason


def test_digits_past_the_microsecond_are_cut_and_do_not_change_other_lines():
    staged = stage(
        {**GOOD, "event_id": "a", "timestamp": "2025-03-01T10:00:00.123456789Z"},
        {**GOOD, "event_id": "b", "timestamp": "3000-01-01T00:00:00Z"},
    )
    assert staged.events.set_index("event_id")["timestamp"]["a"] == pd.Timestamp("2025-03-01 10:00:00.123456", tz="UTC")
    assert staged.quarantine["reason"].tolist() == ["timestamp later than the end of the day after its load day"]


def test_timestamp_up_to_the_end_of_the_next_day_is_accepted():
    staged = stage({**GOOD, "timestamp": "2025-03-02T23:59:59.999Z"}, {**GOOD, "event_id": "old", "timestamp": "2024-01-01T00:00:00Z"})
    assert len(staged.events) == 2 and staged.quarantine.empty


def test_unknown_fields_and_null_optionals_are_accepted():
    staged = stage({**GOOD, "extra": {"nested": True}, "referrer": None, "user_agent": None})
    assert len(staged.events) == 1


def test_timestamps_are_stored_as_utc():
    staged = stage(
        {**GOOD, "event_id": "a", "timestamp": "2025-03-01T12:00:00+02:00"},
        {**GOOD, "event_id": "b", "timestamp": "2025-03-01T05:00:00-05:00"},
        {**GOOD, "event_id": "c", "timestamp": "2025-03-01T10:00:00.250Z"},
    )
    stamps = staged.events.set_index("event_id")["timestamp"]
    assert stamps["a"] == pd.Timestamp("2025-03-01 10:00:00", tz="UTC")
    assert stamps["b"] == pd.Timestamp("2025-03-01 10:00:00", tz="UTC")
    assert stamps["c"] == pd.Timestamp("2025-03-01 10:00:00.250", tz="UTC")


def test_emails_are_trimmed_and_lower_cased():
    staged = stage(conversion("c1", "v1", "2025-03-01 10:00:00", "/thanks", "  Jane.Doe@Example.COM "))
    assert staged.events["email"].tolist() == ["jane.doe@example.com"]


def test_duplicate_in_a_partition_keeps_the_first_line():
    staged = stage({**GOOD, "page_url": "https://a.example/first"}, {**GOOD, "page_url": "https://a.example/second"})
    assert staged.events["page_url"].tolist() == ["https://a.example/first"] and staged.duplicates == 1


def test_quarantine_keeps_file_line_and_raw_text(tmp_path):
    path = write_partition(tmp_path, "2025-03-01", [GOOD, "", "{broken", "   "], name="b.jsonl")
    lines, manifest = read_partition(tmp_path, DAY)
    staged = stage_lines(lines, DAY)
    row = staged.quarantine.iloc[0]
    assert (row["source_file"], row["line_number"], row["raw"], row["reason"]) == ("dt=2025-03-01/b.jsonl", 3, "{broken", "invalid JSON")
    assert manifest[0]["lines_read"] == 2 and manifest[0]["bytes"] == path.stat().st_size


def test_gzip_and_parquet_partitions_are_read(tmp_path):
    folder = tmp_path / "dt=2025-03-01"
    folder.mkdir()
    (folder / "a.jsonl.gz").write_bytes(gzip.compress((json.dumps(GOOD) + "\n").encode()))
    second = {**GOOD, "event_id": "ok-2"}
    pq.write_table(pa.Table.from_pylist([second]), folder / "b.parquet")
    (folder / "notes.txt").write_text("not events")
    lines, manifest = read_partition(tmp_path, DAY)
    staged = stage_lines(lines, DAY)
    assert staged.events["event_id"].tolist() == ["ok-1", "ok-2"]
    assert [m["source_file"] for m in manifest] == ["dt=2025-03-01/a.jsonl.gz", "dt=2025-03-01/b.parquet"]


def _counts(settings, day: str) -> dict:
    runs = table(settings, "pipeline_runs")
    row = runs[runs["interval_start"] == date.fromisoformat(day)].iloc[-1]
    return {k: int(row[k]) for k in ("events_read", "events_loaded", "events_duplicate", "events_quarantined", "events_bot")}


def test_staging_writes_events_quarantine_and_counts(settings):
    bot = event("bot-1", "crawler", "2025-03-01 10:00:00", user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    write_partition(settings.landing, "2025-03-01", [GOOD, GOOD, bot, "{broken", {**GOOD, "event_id": "z", "event_type": "x"}, ""])
    run(settings, "2025-03-01")
    assert _counts(settings, "2025-03-01") == {
        "events_read": 5, "events_loaded": 2, "events_duplicate": 1, "events_quarantined": 2, "events_bot": 1,
    }
    assert table(settings, "events")["event_id"].tolist() == ["bot-1", "ok-1"]
    assert table(settings, "quarantined_events")["reason"].tolist() == ["invalid JSON", "unknown event_type"]
    assert scalar(settings, select(func.count()).select_from(t.sessions)) == 1  # the bot's event makes no session


def test_duplicate_in_a_later_day_is_dropped(settings):
    write_partition(settings.landing, "2025-03-01", [GOOD])
    write_partition(settings.landing, "2025-03-02", [{**GOOD, "page_url": "https://changed.example/"}, event("n", "v2", "2025-03-02 09:00:00")])
    run(settings, "2025-03-01", "2025-03-02")
    events = table(settings, "events").set_index("event_id")
    assert events.loc["ok-1", "page_url"] == GOOD["page_url"] and events.loc["ok-1", "load_date"] == DAY
    assert _counts(settings, "2025-03-02")["events_duplicate"] == 1


def test_earlier_day_processed_later_wins_the_dedupe(settings):
    write_partition(settings.landing, "2025-03-01", [GOOD])
    write_partition(settings.landing, "2025-03-02", [{**GOOD, "page_url": "https://late-copy.example/"}])
    run(settings, "2025-03-02")
    run(settings, "2025-03-01")
    events = table(settings, "events")
    assert events["page_url"].tolist() == [GOOD["page_url"]] and events["load_date"].tolist() == [DAY]


def test_rerun_of_a_day_leaves_the_tables_as_one_run_did(settings):
    write_partition(settings.landing, "2025-03-01", [GOOD, conversion("c", "v1", "2025-03-01 10:05:00", "/thanks", "a@b.co"), "{bad"])
    run(settings, "2025-03-01")
    first = {name: table(settings, name) for name in ("events", "quarantined_events", "sessions", "conversions", "contacts")}
    run(settings, "2025-03-01")
    for name, frame in first.items():
        again = table(settings, name)
        if name == "contacts":
            frame, again = frame.drop(columns=["updated_at", "run_id"]), again.drop(columns=["updated_at", "run_id"])
        pd.testing.assert_frame_equal(frame, again, check_dtype=False)
    assert _counts(settings, "2025-03-01") == {"events_read": 3, "events_loaded": 2, "events_duplicate": 0, "events_quarantined": 1, "events_bot": 0}


def test_missing_landing_folder_is_a_clear_error(settings, tmp_path):
    from pipeline.contract.landing import LandingError

    with pytest.raises(LandingError, match="landing folder not found"):
        read_partition(tmp_path / "nowhere", DAY)


def test_staging_chunk_by_chunk_equals_staging_the_day_whole(tmp_path):
    """Staging holds one chunk of a file's lines at a time; duplicates across chunks and files, quarantine and counts
    are those of checking the whole day at once."""
    write_partition(tmp_path / "landing", "2025-03-01", [GOOD, {**GOOD, "event_id": "ok-2"}, "{broken"], name="a.jsonl")
    write_partition(tmp_path / "landing", "2025-03-01", [{**GOOD, "page_url": "https://a.example/later"}, {**GOOD, "event_id": "ok-3"}], name="b.jsonl")
    write_partition(tmp_path / "landing", "2025-03-01", ["{also broken", {**GOOD, "event_id": "ok-3"}], name="c.jsonl")
    lines, manifest = read_partition(tmp_path / "landing", DAY)
    whole = stage_lines(lines, DAY)
    published = {}
    for chunk in (120, 1 << 20):  # a chunk is about one line, or the whole file
        settings = Settings(landing=tmp_path / "landing", warehouse_url=f"sqlite:///{tmp_path / f'{chunk}.db'}", workspace=tmp_path / "runs", stage_chunk_bytes=chunk)
        run(settings, "2025-03-01")
        published[chunk] = (table(settings, "events"), table(settings, "quarantined_events"), _counts(settings, "2025-03-01"))
    small, large = published.values()
    for left, right in zip(small, large):
        pd.testing.assert_frame_equal(left, right) if isinstance(left, pd.DataFrame) else None
    assert small[2] == large[2] == {"events_read": 7, "events_loaded": 3, "events_duplicate": 2, "events_quarantined": 2, "events_bot": 0}
    assert small[0]["event_id"].tolist() == whole.events["event_id"].tolist() == ["ok-1", "ok-2", "ok-3"]
    assert small[1]["line_number"].tolist() == whole.quarantine["line_number"].tolist()
    assert len(manifest) == 3
