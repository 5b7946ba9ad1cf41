"""The reader's per-process memo: facts of one published version only, bounded, least recently used out."""

from __future__ import annotations

from pipeline.serve.memo import VersionMemo

V1, V2 = (1, "run_a"), (2, "run_b")
SHAPE = ("any", (), (), None, None)


def test_facts_are_kept_for_their_version():
    memo = VersionMemo().at(V1)
    memo.remember_total(SHAPE, V1, 42)
    memo.remember_start(SHAPE, 50, V1, ("2025-03-01 10:00:00", "s1", "a@x.co"))
    assert memo.total(SHAPE, V1) == 42
    assert memo.start(SHAPE, 50, V1) == ("2025-03-01 10:00:00", "s1", "a@x.co")
    assert memo.start(SHAPE, 51, V1) is None and memo.total(("first", (), (), None, None), V1) is None


def test_a_new_version_forgets_everything():
    memo = VersionMemo().at(V1)
    memo.remember_total(SHAPE, V1, 42)
    memo.at(V2)
    assert memo.total(SHAPE, V2) is None and memo.total(SHAPE, V1) is None


def test_a_fact_learnt_on_an_older_snapshot_is_not_kept():
    memo = VersionMemo().at(V2)
    memo.remember_total(SHAPE, V1, 42)  # a reader that began before the publish finishes after it
    assert memo.total(SHAPE, V2) is None and memo.total(SHAPE, V1) is None


def test_same_version_number_of_a_rebuilt_warehouse_is_another_version():
    memo = VersionMemo().at((1, "run_a"))
    memo.remember_total(SHAPE, (1, "run_a"), 42)
    memo.at((1, "run_z"))
    assert memo.total(SHAPE, (1, "run_z")) is None


def test_the_least_recently_used_facts_go_first():
    memo = VersionMemo(max_facts=2).at(V1)
    for n, scope in enumerate(("any", "first", "after")):
        memo.remember_total((scope,), V1, n)
        if scope == "first":
            assert memo.total(("any",), V1) == 0  # used: "first" is now the oldest
    assert memo.total(("any",), V1) == 0 and memo.total(("first",), V1) is None and memo.total(("after",), V1) == 2
