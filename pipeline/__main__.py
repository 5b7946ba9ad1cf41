"""Entry point of `python -m pipeline` (it leaves through `cli.leave`: no interpreter shutdown after the command)."""

import os
import sys

HUGE_PAGES = "glibc.malloc.hugetlb=1"


def _with_huge_pages() -> None:
    """Start again with glibc's malloc asking for transparent huge pages (read only when a process starts, hence the
    exec, before anything is imported). Big frames and Arrow buffers then fault in 2 MB at a time, not 4 KB: a 1M-event
    day's page faults halve, its kernel time falls ~1.2 s and the run ~1.3 s (README, Benchmark). The quality worker
    inherits the environment. Skipped where the kernel has no THP to give or the C library is not glibc ≥ 2.35, and
    when GLIBC_TUNABLES already says anything about it (`glibc.malloc.hugetlb=0` turns it off)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables or not _started_as_this_module() or not _glibc_with_hugetlb() or not _thp_on_request():
        return
    environment = {**os.environ, "GLIBC_TUNABLES": ":".join(filter(None, [tunables, HUGE_PAGES]))}
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)


def _started_as_this_module() -> bool:
    """Only `python [options] -m pipeline …` is started again as it was (not a runner that imports this module)."""
    argv = sys.orig_argv
    return "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "pipeline"


def _glibc_with_hugetlb() -> bool:
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        return name == "glibc" and tuple(map(int, version.split(".")[:2])) >= (2, 35)
    except (ValueError, OSError, AttributeError):  # not glibc, or no confstr
        return False


def _thp_on_request() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as modes:
            return "[never]" not in modes.read()
    except OSError:
        return False


_with_huge_pages()

from pipeline.cli import leave, main  # noqa: E402 - after the exec above: nothing is imported twice

leave(main())
