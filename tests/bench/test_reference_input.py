"""The reference's input: the valid events of a landing file, re-sent copies kept, times in UTC to the second."""

import json
from datetime import date

from pipeline.bench.reference_input import write_reference_input


def _event(event_id: str, timestamp: str, **extra) -> str:
    return json.dumps({"event_id": event_id, "anonymous_id": "a1", "timestamp": timestamp, "event_type": "page_view",
                       "page_url": "https://shop.example/", **extra})  # fmt: skip


def test_valid_events_are_written_in_the_reference_format(tmp_path):
    source = tmp_path / "dt=2025-03-31" / "events.jsonl"
    source.parent.mkdir()
    lines = [_event("e1", "2025-03-31T10:00:00.750+02:00"), "{broken", _event("e2", "2025-03-31T09:00:05Z"), _event("e2", "2025-03-31T09:00:05Z")]
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ref" / "events.jsonl"
    out.parent.mkdir()
    assert write_reference_input(source, out, date(2025, 3, 31)) == 3
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["event_id"], e["timestamp"]) for e in written] == [("e1", "2025-03-31T08:00:00Z"), ("e2", "2025-03-31T09:00:05Z"), ("e2", "2025-03-31T09:00:05Z")]
    assert written[0]["page_url"] == "https://shop.example/" and written[0]["email"] is None
