"""Modules a library imports but a run never uses, imported only when something first touches them.

Great Expectations imports SciPy's statistics and Altair at import time, for expectations and renderers the quality
gates never run (KL divergence, Kolmogorov-Smirnov tests, charts of results): 1.2 of the 3.0 s its import costs a
process (the quality worker, and every DAG task that checks). `defer` puts a stand-in in `sys.modules` under the
module's name; the first attribute asked of it (a function, a class, `__file__`, a submodule's `__path__`) imports
the real module and answers from it from then on, so whoever does use it gets the real thing, only later.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

_loading = threading.RLock()  # re-entrant: a real module's import may touch another stand-in


class Deferred(types.ModuleType):
    """A stand-in for a module not imported yet; its first unknown attribute imports the module and forwards to it."""

    def __getattr__(self, attribute: str):
        return getattr(self._real_module(), attribute)

    def _real_module(self) -> types.ModuleType:
        with _loading:
            real = self.__dict__.get("_real")
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                self.__dict__["_real"] = real
        return real


def defer(*names: str) -> None:
    """Stand-ins for these modules, where they are installed and not imported yet (an imported one stays as it is)."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        stand_in = Deferred(name)
        stand_in.__spec__ = spec  # the import system asks for it, and must not import the module to get it
        sys.modules[name] = stand_in


def is_deferred(name: str) -> bool:
    """Whether the module is still a stand-in (nothing has touched it)."""
    module = sys.modules.get(name)
    return isinstance(module, Deferred) and "_real" not in module.__dict__
