"""A run's workspace: the folder where each step leaves its output (Arrow IPC files) until publish reads it.

Steps pass only the run id between them (through XCom on Airflow); everything else is here. Nothing in
the workspace is visible to readers: the warehouse changes only when publish commits.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.feather as feather

from pipeline.settings import Settings
from pipeline.transform.frames import stack
from pipeline.transform.keys import key_bucket
from pipeline.warehouse.event_store import EventFile

# Arrow's own file format, uncompressed: a frame goes out and comes back without encoding or decoding its columns. The
# files live for one run, mostly in the page cache; as Parquet a 100k-row sessions file took 110 ms to write and 160 ms
# to read back (its strings decoded), as Arrow IPC 33 and 23 ms, at twice the bytes; smaller files 0.3-6 ms less each way
FORMAT, SUFFIX = "ipc", ".arrow"


@dataclass
class RunPlan:
    """What one run covers; written by the first step, read by every other."""

    run_id: str
    days: list[date]
    full_refresh: bool
    buckets: int
    base_version: int
    started_at: datetime
    stats: dict = field(default_factory=dict)
    new_files: list[dict] = field(default_factory=list)  # store files the run wrote (EventFile.to_json), live once published
    retired_files: list[str] = field(default_factory=list)  # live store files the run replaces
    unchanged_since: str | None = None  # the earlier run whose input this one found unchanged: nothing to redo
    fingerprint: str = ""  # the settings that shape the derived tables (a changed one means: recompute)

    def event_files(self) -> list[EventFile]:
        return [EventFile.from_json(f) for f in self.new_files]

    def to_json(self) -> str:
        data = asdict(self)
        data["days"] = [d.isoformat() for d in self.days]
        data["started_at"] = self.started_at.isoformat()
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunPlan:
        data = json.loads(text)
        data["days"] = [date.fromisoformat(d) for d in data["days"]]
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        return cls(**data)


class Workspace:
    """Files of one run under settings.workspace/<run_id>/."""

    def __init__(self, settings: Settings, run_id: str):
        self.root = Path(settings.workspace) / run_id

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def save_plan(self, plan: RunPlan) -> None:
        self.create()
        (self.root / "plan.json").write_text(plan.to_json())

    def plan(self) -> RunPlan:
        path = self.root / "plan.json"
        if not path.exists():
            raise FileNotFoundError(f"run workspace {self.root} has no plan: was the run started?")
        return RunPlan.from_json(path.read_text())

    def write(self, name: str, frame: pd.DataFrame) -> None:
        """Write a frame atomically (temp file, then rename), so a retried step never sees half a file."""
        self.create()
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        feather.write_feather(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), tmp, compression="uncompressed")
        tmp.replace(path)

    def write_buckets(self, name: str, frame: pd.DataFrame, bucket: np.ndarray, buckets: int) -> None:
        """Write one file per bucket (name-0 … name-N) from each row's bucket number, so a bucket task reads only its own."""
        for b in range(buckets):
            self.write(f"{name}-{b}", frame[bucket == b])

    def write_changes(self, changes: pd.DataFrame, buckets: int) -> None:
        """The changed visitors (anonymous_id, visitor_key, change_at), split by their visitor key's bucket."""
        self.write_buckets("changes", changes, key_bucket(changes["visitor_key"].to_numpy(), buckets), buckets)

    def read(self, name: str) -> pd.DataFrame:
        return feather.read_table(self._path(name), memory_map=False).to_pandas()

    def _path(self, name: str) -> Path:
        return self.root / f"{name}{SUFFIX}"

    def read_buckets(self, prefix: str, buckets: int) -> pd.DataFrame:
        """Concatenate the per-bucket outputs of one step."""
        return stack([self.read(f"{prefix}-{b}") for b in range(buckets)])

    def read_matching(self, prefix: str, buckets: int, columns: dict) -> pd.DataFrame:
        """Rows of one step's per-bucket outputs whose value in any of the given columns is in that column's values
        (filtered while reading, so only the matching rows are ever held)."""
        return self._read_filtered([f"{prefix}-{b}" for b in range(buckets)], columns)

    def read_where(self, name: str, columns: dict) -> pd.DataFrame:
        """`read_matching` of one output file."""
        return self._read_filtered([name], columns)

    def _read_filtered(self, names: list[str], columns: dict) -> pd.DataFrame:
        paths = [str(self._path(name)) for name in names]
        schema = pa.unify_schemas([ds.dataset(path, format=FORMAT).schema for path in paths], promote_options="permissive")
        condition = None
        for column, values in columns.items():
            values = values if isinstance(values, pd.Series) else pd.Series(sorted(values), dtype="str")
            keys = pa.array(values.astype("str"), type=pa.string(), from_pandas=True).unique()
            kind = schema.field(column).type  # a column that is empty in every file has no type: nothing matches
            part = ds.scalar(False) if kind == pa.null() else ds.field(column).isin(keys.cast(kind))
            condition = part if condition is None else condition | part
        return ds.dataset(paths, schema=schema, format=FORMAT).to_table(filter=condition).to_pandas()

    def write_json(self, name: str, data: dict) -> None:
        self.create()
        (self.root / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))

    def validation_summary(self) -> str | None:
        """The quality check's one-line summary, or None when the run did not get that far."""
        return self.read_json("validation").get("summary") if (self.root / "validation.json").exists() else None

    def read_json(self, name: str) -> dict:
        return json.loads((self.root / f"{name}.json").read_text())
