"""Hash buckets only split the work: any bucket count, changing from one run to the next on the same warehouse,
publishes the tables one bucket does."""

from __future__ import annotations

import tempfile
import uuid
from datetime import date
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.sample.generate import generate_landing
from pipeline.settings import Settings
from tests.conftest import examples
from tests.helpers import run
from tests.runs.test_incremental import assert_same_tables, published

DAYS = ("2025-03-01", "2025-03-02")
COUNTS = st.sampled_from([1, 2, 3, 7, 64])  # 64 buckets for ~100 visitors: most of them empty


@lru_cache(maxsize=1)
def landing_for(seed: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"buckets-{seed}-"))
    generate_landing(root / "landing", visitors=100, days=len(DAYS), start=date(2025, 3, 1), seed=seed)
    return root


def published_after(seed: int, counts: tuple[int, ...]) -> dict:
    """A fresh warehouse, the load days run in order, each with its own bucket count."""
    root, name = landing_for(seed), uuid.uuid4().hex[:8]
    for day, buckets in zip(DAYS, counts):
        settings = Settings(warehouse_url=f"sqlite:///{root / f'{name}.db'}", landing=root / "landing", workspace=root / f"runs-{name}", buckets=buckets)
        run(settings, day)
    return published(settings)


@lru_cache(maxsize=1)
def one_bucket(seed: int) -> dict:
    return published_after(seed, (1,) * len(DAYS))


@hsettings(max_examples=examples(2, ci=3), suppress_health_check=[HealthCheck.too_slow])  # each example: a run per day
@given(seed=st.just(11), counts=st.lists(COUNTS, min_size=len(DAYS), max_size=len(DAYS)).filter(lambda c: len(set(c)) > 1))
@example(seed=11, counts=[64, 3])
def test_the_bucket_count_changing_between_runs_on_one_warehouse_publishes_the_same_tables(seed, counts):
    assert_same_tables(published_after(seed, tuple(counts)), one_bucket(seed))
