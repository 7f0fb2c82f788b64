"""LatestOnly: the newest offer wins, replaced offers are handed back, close never hangs."""

from __future__ import annotations

import threading

from unsloth_nb.latest_only import LatestOnly


def test_offers_made_while_busy_collapse_to_the_newest() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[int] = []
    dropped: list[int] = []

    def work(item: int) -> None:
        started.set()
        release.wait(5)
        done.append(item)

    worker: LatestOnly[int] = LatestOnly(work, name="test-latest-only", on_dropped=dropped.append)
    worker.offer(1)
    assert started.wait(5)
    for item in (2, 3, 4):  # 1 is under way: 2 and 3 are replaced before their turn
        worker.offer(item)
    assert not worker.wait_idle(0.05)
    release.set()
    assert worker.wait_idle(5)
    worker.close()

    assert done == [1, 4]
    assert dropped == [2, 3]


def test_close_drops_the_waiting_item_and_refuses_new_ones() -> None:
    started, release = threading.Event(), threading.Event()
    dropped: list[str] = []

    def work(item: str) -> None:
        started.set()
        release.wait(5)

    worker: LatestOnly[str] = LatestOnly(work, name="test-latest-only", on_dropped=dropped.append, join_timeout=5)
    worker.offer("running")
    assert started.wait(5)
    worker.offer("waiting")
    release.set()
    worker.close()
    worker.offer("late")

    assert dropped == ["waiting", "late"]


def test_an_error_in_work_does_not_stop_the_thread() -> None:
    seen: list[int] = []

    def work(item: int) -> None:
        seen.append(item)
        if item == 1:
            raise RuntimeError("boom")

    worker: LatestOnly[int] = LatestOnly(work, name="test-latest-only")
    worker.offer(1)
    assert worker.wait_idle(5)
    worker.offer(2)
    assert worker.wait_idle(5)
    worker.close()

    assert seen == [1, 2]
