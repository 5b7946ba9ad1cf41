"""`.ci/run`, the CI entry point: it runs `make test` and returns pytest's own exit code, so a run that collected no
test (pytest's exit 5) fails CI instead of passing it."""

from __future__ import annotations

import os
import subprocess

from tests.helpers import REPO_DAGS

REPO = REPO_DAGS.parent


def ci_run(pytest_args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONTACTS_"))}
    return subprocess.run([str(REPO / ".ci" / "run")], cwd=REPO, env=dict(environment, PYTEST_ARGS=pytest_args),
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_ci_fails_when_pytest_collects_nothing():
    result = ci_run("-q -p no:cacheprovider -k no_test_is_named_like_this tests/test_layout.py")
    assert result.returncode == 5, result.stdout + result.stderr
    assert "ci: pytest collected no tests" in result.stderr


def test_ci_returns_pytests_exit_code():
    passing = ci_run("-q -p no:cacheprovider tests/test_layout.py::test_no_module_imports_in_a_circle")
    assert passing.returncode == 0 and "1 passed" in passing.stdout, passing.stdout + passing.stderr
    failing = ci_run("-q -p no:cacheprovider tests/test_layout.py::no_such_test")
    assert failing.returncode == 4, failing.stdout + failing.stderr  # pytest's "usage error": not make's 2
