"""The benchmark runs end to end at a small size and prints every figure (its numbers are not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO_DAGS


def test_bench_prints_every_figure(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_DAGS.parent), CONTACTS_BUCKETS="2")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "bench", "--events", "3000", "--queries", "40"],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    for figure in ("stage", "sessionize", "identify", "summarise", "check", "publish", "events/s", "peak RSS", "p50", "p95", "max", "attribution credits", "attribution report"):
        assert figure in result.stdout
