"""Great Expectations' fixed costs per validation cut, with the same functions giving the same results.

A run validates four suites (a backfill of 30 days: 120 validations, twice where one fails), and GX 1.x spends most of
a small validation on bookkeeping rather than on the data: these shortcuts remove three of those costs. Each is
applied once per process, by `quality.Validator`; `tests/runs/test_gx_shortcuts.py` compares them with GX's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

GX_KWARG_READERS: dict = {}  # GX's own readers, kept for the tests that compare them with the shortcuts


def install() -> None:
    """Every shortcut below (idempotent)."""
    _memoize_expectation_types()
    _read_kwargs_once()


def _memoize_expectation_types() -> None:
    """GX 1.x turns an expectation's class name into its type with two regular expressions (`camel_to_snake`) every
    time it builds a configuration or looks a metric provider up: thousands of times a validation, ~18% of the gates'
    time (8 backfill runs: 1.37 of 7.5 s). The names are a handful of class names, so the answers are memoized in the
    module that asks (same function, same results)."""
    from great_expectations.expectations import expectation

    if not hasattr(expectation.camel_to_snake, "cache_info"):
        expectation.camel_to_snake = lru_cache(maxsize=1024)(expectation.camel_to_snake)


def _read_kwargs_once() -> None:
    """GX 1.x's `Expectation` rebuilds its whole configuration (a pydantic `.dict()` and a new ExpectationConfiguration)
    for every key it reads from it: an expectation's runtime kwargs built it ~15 times, 40% of a small validation's
    CPU. These versions of its four kwarg readers build it once a call and read every key from that; the same keys,
    defaults and order, and GX's own reader for a key that is no field (its warning)."""
    from great_expectations.expectations.expectation import Expectation, parse_result_format

    if getattr(Expectation._get_runtime_kwargs, "reads_kwargs_once", False):
        return
    names = ("_get_success_kwarg", "_get_domain_kwargs", "_get_success_kwargs", "_get_runtime_kwargs")
    GX_KWARG_READERS.update((name, getattr(Expectation, name)) for name in names)
    gx_success_kwarg = GX_KWARG_READERS["_get_success_kwarg"]

    def _get_success_kwarg(self, key, default=None, *, kwargs=None):
        kwargs = self.configuration.kwargs if kwargs is None else kwargs
        if key in kwargs:
            return kwargs[key]
        field = self.__fields__.get(key)
        if field is None:
            return gx_success_kwarg(self, key, default)
        return field.default if not field.required else default

    def _get_domain_kwargs(self, *, kwargs=None):
        kwargs = self.configuration.kwargs if kwargs is None else kwargs
        return {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}

    def _get_success_kwargs(self, *, kwargs=None):
        kwargs = self.configuration.kwargs if kwargs is None else kwargs
        success = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}
        success.update(self._get_domain_kwargs(kwargs=kwargs))
        return success

    def _get_runtime_kwargs(self, runtime_configuration=None):
        runtime_configuration = runtime_configuration or {}
        kwargs = self.configuration.kwargs
        success = self._get_success_kwargs(kwargs=kwargs)
        runtime = {key: runtime_configuration.get(key, self._get_success_kwarg(key, kwargs=kwargs)) for key in self.runtime_keys}
        runtime.update(success)
        runtime["result_format"] = parse_result_format(runtime["result_format"])
        return runtime

    _get_runtime_kwargs.reads_kwargs_once = True
    Expectation._get_success_kwarg = _get_success_kwarg
    Expectation._get_domain_kwargs = _get_domain_kwargs
    Expectation._get_success_kwargs = _get_success_kwargs
    Expectation._get_runtime_kwargs = _get_runtime_kwargs


@contextmanager
def no_batch_fingerprint() -> Iterator[None]:
    """GX hashes every in-memory batch for a marker nobody reads here; on 1M rows that costs more than the checks."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if not hasattr(engine, "HASH_THRESHOLD"):  # a later GX without the fingerprint: nothing to turn off
        yield
        return
    saved, engine.HASH_THRESHOLD = engine.HASH_THRESHOLD, 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = saved
