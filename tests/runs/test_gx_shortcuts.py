"""The Great Expectations shortcuts give GX's own answers: every expectation of every suite reads the same kwargs."""

from __future__ import annotations

import pytest

from pipeline.runs import gx_shortcuts
from pipeline.runs.expectations import suite_expectations
from pipeline.runs.quality import PASS_FORMAT, RESULT_FORMAT, SUITES, validator

RUNTIME_CONFIGURATIONS = [None, {}, PASS_FORMAT, RESULT_FORMAT, {"result_format": "SUMMARY", "catch_exceptions": False}]


@pytest.fixture(scope="module")
def expectations() -> list:
    validator()  # installs the shortcuts, as a run does
    return [e for suite in SUITES for e in suite_expectations(suite)]


def test_shortcuts_are_installed_once(expectations):
    from great_expectations.expectations.expectation import Expectation

    gx_shortcuts.install()
    assert Expectation._get_runtime_kwargs.reads_kwargs_once
    assert not getattr(gx_shortcuts.GX_KWARG_READERS["_get_runtime_kwargs"], "reads_kwargs_once", False)


@pytest.mark.parametrize("runtime", RUNTIME_CONFIGURATIONS)
def test_runtime_kwargs_are_gx_own(expectations, runtime):
    gx = gx_shortcuts.GX_KWARG_READERS["_get_runtime_kwargs"]
    for expectation in expectations:
        assert expectation._get_runtime_kwargs(runtime) == gx(expectation, runtime), expectation.meta["check"]


def test_domain_and_success_kwargs_are_gx_own(expectations):
    readers = gx_shortcuts.GX_KWARG_READERS
    for expectation in expectations:
        assert expectation._get_domain_kwargs() == readers["_get_domain_kwargs"](expectation)
        assert expectation._get_success_kwargs() == readers["_get_success_kwargs"](expectation)
        for key in (*expectation.domain_keys, *expectation.success_keys, *expectation.runtime_keys, "no_such_kwarg"):
            assert expectation._get_success_kwarg(key, "fallback") == readers["_get_success_kwarg"](expectation, key, "fallback"), key
