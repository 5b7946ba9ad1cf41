"""The run workspace hands frames between steps as files: what a step writes, the next reads back unchanged."""

import pandas as pd
import pytest

from pipeline.runs.workspace import SUFFIX, Workspace
from pipeline.settings import Settings

FRAMES = {
    "no columns": pd.DataFrame(),
    "nullable": pd.DataFrame({
        "none": [None, None],
        "count": pd.array([1, None], dtype="Int64"),
        "flag": pd.array([True, None], dtype="boolean"),
        "share": [0.5, float("nan")],
    }),
    "categories": pd.DataFrame({"channel": pd.Categorical(["Organic Search", "Direct", "Organic Search"])}),
    "times": pd.DataFrame({
        "timestamp": pd.to_datetime(["2025-03-01T10:00:00.123456Z", None], utc=True).astype("datetime64[us, UTC]"),
        "day": [pd.Timestamp("2025-03-01").date(), None],
    }),
    "text": pd.DataFrame({"email": pd.Series(["a@x.io", None, "ü@x.io"], dtype="str")}),
}


@pytest.fixture
def workspace(tmp_path, sqlite_url):
    return Workspace(Settings(workspace=tmp_path / "runs", warehouse_url=sqlite_url, landing=tmp_path), "run-1")


@pytest.mark.parametrize("name", FRAMES)
def test_a_frame_comes_back_with_its_values_and_dtypes(workspace, name):
    frame = FRAMES[name]
    workspace.write(name, frame)
    back = workspace.read(name)
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_column_type=False)  # (no columns: an empty Index, not a RangeIndex)
    assert [p.name for p in workspace.root.iterdir()] == [f"{name}{SUFFIX}"]  # renamed into place: no temporary left


def test_the_index_is_not_kept(workspace):
    workspace.write("sessions", pd.DataFrame({"session_id": ["b", "a"]}, index=[7, 3]))
    assert workspace.read("sessions").index.tolist() == [0, 1]


def test_reads_filtered_across_bucket_files(workspace):
    workspace.write("sessions-0", pd.DataFrame({"session_id": ["s1", "s2"], "anonymous_id": ["v1", "v2"]}))
    workspace.write("sessions-1", pd.DataFrame({"session_id": ["s3"], "anonymous_id": ["v3"]}))
    found = workspace.read_matching("sessions", 2, {"anonymous_id": ["v3"], "session_id": pd.Series(["s1"])})
    assert sorted(found["session_id"]) == ["s1", "s3"]
    assert workspace.read_where("sessions-0", {"anonymous_id": ["v9"]}).empty


def test_a_column_empty_in_every_file_matches_nothing(workspace):
    workspace.write("conversions-0", pd.DataFrame({"event_id": [None]}))
    assert workspace.read_matching("conversions", 1, {"event_id": ["e1"]}).empty
