"""`read_ahead.ahead`: the builder's read-and-encode-ahead thread(s)."""

import threading
import time

import pytest

from luma_noise import read_ahead


def test_results_come_in_order_whatever_the_finishing_order():
    def slow_first(i):
        time.sleep(0.02 if i % 3 == 0 else 0)
        return i * i

    assert list(read_ahead.ahead(slow_first, range(20))) == [i * i for i in range(20)]


def test_work_runs_at_most_depth_items_ahead():
    started = []
    gate = threading.Event()

    def work(i):
        started.append(i)
        gate.wait(5)
        return i

    results = read_ahead.ahead(work, range(100), depth=2)
    gate.set()
    assert next(results) == 0
    assert len(started) <= 1 + 2  # the item handed over and depth ahead
    results.close()
    assert len(started) < 10  # closing cancelled what was queued


def test_an_error_surfaces_at_the_item_that_raised():
    def work(i):
        if i == 3:
            raise ValueError("item 3 is bad")
        return i

    results = read_ahead.ahead(work, range(10))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3 is bad"):
        next(results)


def test_items_run_one_after_another():
    active, overlaps = [0], []

    def work(i):
        active[0] += 1
        overlaps.append(active[0])
        time.sleep(0.005)
        active[0] -= 1
        return i

    assert list(read_ahead.ahead(work, range(10))) == list(range(10))
    assert max(overlaps) == 1
