"""Hash buckets only split the work: any bucket count publishes the same tables."""

from __future__ import annotations

import tempfile
from datetime import date
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.sample.generate import generate_landing
from pipeline.settings import Settings
from tests.helpers import run
from tests.runs.test_incremental import assert_same_tables, published


@lru_cache(maxsize=4)
def landing_for(seed: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"buckets-{seed}-"))
    generate_landing(root / "landing", visitors=120, days=2, start=date(2025, 3, 1), seed=seed)
    return root


def publish_with(seed: int, buckets: int) -> dict:
    root = landing_for(seed)
    settings = Settings(warehouse_url=f"sqlite:///{root / f'b{buckets}.db'}", landing=root / "landing", workspace=root / f"runs{buckets}", buckets=buckets)
    if not Path(settings.warehouse_url.removeprefix("sqlite:///")).exists():
        run(settings, "2025-03-01", "2025-03-02")
    return published(settings)


@hsettings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from([11, 12]), buckets=st.sampled_from([2, 7, 64]))
def test_any_bucket_count_publishes_the_same_tables(seed, buckets):
    assert_same_tables(publish_with(seed, buckets), publish_with(seed, 1))
