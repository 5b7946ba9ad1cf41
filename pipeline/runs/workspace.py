"""A run's workspace: the folder where each step leaves its output (Parquet) until publish reads it.

Steps pass only the run id between them (through XCom on Airflow); everything else is here. Nothing in
the workspace is visible to readers: the warehouse changes only when publish commits.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.settings import Settings
from pipeline.transform.frames import stack


def bucket_of(values: pd.Series, buckets: int) -> pd.Series:
    """Stable hash bucket of each key (same on every machine and run), for splitting work into buckets."""
    if buckets == 1 or values.empty:
        return pd.Series(0, index=values.index, dtype="int64")
    hashes = pd.util.hash_array(values.astype(object).to_numpy(), categorize=False)
    return pd.Series((hashes % buckets).astype("int64"), index=values.index)


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
        path = self.root / f"{name}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False), tmp)
        tmp.replace(path)

    def write_buckets(self, name: str, frame: pd.DataFrame, key: str, buckets: int) -> None:
        """Write one file per hash bucket of `key` (name-0 … name-N), so each bucket task reads only its own."""
        bucket = bucket_of(frame[key], buckets).to_numpy()
        for b in range(buckets):
            self.write(f"{name}-{b}", frame[bucket == b])

    def read(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / f"{name}.parquet")

    def read_buckets(self, prefix: str, buckets: int) -> pd.DataFrame:
        """Concatenate the per-bucket outputs of one step."""
        return stack([self.read(f"{prefix}-{b}") for b in range(buckets)])

    def write_json(self, name: str, data: dict) -> None:
        self.create()
        (self.root / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))

    def validation_summary(self) -> str | None:
        """The quality check's one-line summary, or None when the run did not get that far."""
        return self.read_json("validation").get("summary") if (self.root / "validation.json").exists() else None

    def read_json(self, name: str) -> dict:
        return json.loads((self.root / f"{name}.json").read_text())
