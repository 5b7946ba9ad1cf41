"""ordered_map: results in the items' order, whatever order the threads finish in, and a bounded look-ahead; in_background
beside it."""

import threading
import time

import pytest

from pipeline.runs.threads import in_background, ordered_map


def test_results_come_in_the_items_order_when_later_items_finish_first():
    delays = [0.05, 0.0, 0.03, 0.0, 0.01]

    def slow(i):
        time.sleep(delays[i])
        return i * 10

    assert list(ordered_map(slow, range(len(delays)))) == [0, 10, 20, 30, 40]


def test_it_takes_at_most_workers_plus_one_items_ahead_of_the_consumer():
    taken = []

    def items():
        for i in range(10):
            taken.append(i)
            yield i

    results = ordered_map(lambda i: i, items(), workers=2)
    assert next(results) == 0
    assert len(taken) == 3  # the one handed out and two in flight
    assert list(results) == list(range(1, 10))


def test_a_failing_item_raises_in_the_consumer_at_its_place():
    def check(i):
        if i == 2:
            raise ValueError("bad chunk")
        return i

    results = ordered_map(check, range(5))
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="bad chunk"):
        next(results)


def test_background_work_is_not_queued_behind_a_one_thread_map():
    """Publish's fsyncs run while a chain's read-ahead checks lines on the one-thread pool."""
    release = threading.Event()
    busy = ordered_map(lambda _: release.wait(5), range(2), workers=1)
    next_result = threading.Thread(target=lambda: next(busy))
    next_result.start()  # the one-thread pool is now busy until released
    try:
        assert in_background(lambda x: x * 2, 21).result(timeout=2) == 42
    finally:
        release.set()
        next_result.join()
        list(busy)
