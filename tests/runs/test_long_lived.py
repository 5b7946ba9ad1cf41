"""kept_for_good: what a block makes is frozen out of the collector's scans, and collection resumes after it."""

import gc

from pipeline.runs.long_lived import kept_for_good


class Node:
    def __init__(self):
        self.me = self  # a cycle: tracked by the collector


def test_objects_made_in_the_block_are_frozen_and_collection_resumes():
    before = gc.get_freeze_count()
    try:
        with kept_for_good():
            assert not gc.isenabled()
            made = [Node() for _ in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= before + len(made)
    finally:
        gc.unfreeze()


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    try:
        with kept_for_good():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()
