"""Deferred imports: a stand-in module imports the real one at first use and answers from it; the quality gates run
whole without the modules Great Expectations imports for checks they never use. Each case runs in a fresh
interpreter, where the modules are not imported yet."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from pipeline.settings import REPO_ROOT


def _run(code: str) -> dict:
    """Run the code in a new interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_use_imports_the_real_module():
    found = _run(
        """
        import json, sys
        from pipeline.runs.deferred_imports import defer, is_deferred
        defer("colorsys")
        before = is_deferred("colorsys")
        import colorsys
        hsv = colorsys.rgb_to_hsv(1.0, 0.0, 0.0)
        from colorsys import hls_to_rgb
        print(json.dumps({"before": before, "after": is_deferred("colorsys"), "hsv": hsv, "hls": hls_to_rgb(0.0, 0.5, 1.0),
                          "real": type(sys.modules["colorsys"]).__name__, "file": colorsys.__file__.endswith("colorsys.py")}))
        """
    )
    assert found == {"before": True, "after": False, "hsv": [0.0, 1.0, 1.0], "hls": [1.0, 0.0, 0.0], "real": "module", "file": True}


def test_submodule_of_a_deferred_package():
    found = _run(
        """
        import json
        from pipeline.runs.deferred_imports import defer
        defer("email")
        import email.utils
        print(json.dumps({"quoted": email.utils.quote('a"b')}))
        """
    )
    assert found == {"quoted": 'a\\"b'}


def test_imported_or_missing_modules_are_left_alone():
    found = _run(
        """
        import json, sys, colorsys
        from pipeline.runs.deferred_imports import defer, is_deferred
        defer("colorsys", "no_such_module_anywhere")
        print(json.dumps({"same": sys.modules["colorsys"] is colorsys, "missing": "no_such_module_anywhere" in sys.modules,
                          "deferred": is_deferred("colorsys")}))
        """
    )
    assert found == {"same": True, "missing": False, "deferred": False}


def test_gates_run_whole_without_the_deferred_modules(tmp_path):
    """A run's four suites, one check failing on a crafted session id (so GX also computes the failure's details):
    the outcomes are complete and SciPy's statistics and Altair were never imported."""
    found = _run(
        f"""
        import json
        from pipeline.runs.quality import UNUSED_BY_GATES, validate_frames, run_frames
        from pipeline.runs.deferred_imports import is_deferred
        from pipeline.settings import Settings
        from pipeline.runs.workspace import Workspace
        from tests.runs.test_quality import prepare_run
        root = {str(tmp_path)!r}
        settings = Settings(warehouse_url=f"sqlite:///{{root}}/wh.db", landing=f"{{root}}/landing", workspace=f"{{root}}/runs")
        frames = run_frames(settings, Workspace(settings, prepare_run(settings)))
        frames["sessions"].loc[0, "session_id"] = "not-hex"
        outcomes = validate_frames(frames)
        print(json.dumps({{"summary": [o.summary() for o in outcomes], "failed": [f["check"] for o in outcomes for f in o.failures],
                          "deferred": [is_deferred(name) for name in UNUSED_BY_GATES]}}))
        """
    )
    assert found["failed"] == ["session_id matches ^[0-9a-f]{32}$"]
    assert [s.split()[0] for s in found["summary"]] == ["events", "sessions", "contacts", "attribution_credits"]
    assert "sessions 31/32 FAILED (1 critical, 0 non-critical)" in found["summary"]
    assert found["deferred"] == [True, True]
