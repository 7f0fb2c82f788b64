"""EventLog: dense seq, cursor reads without gaps or duplicates, JSONL persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from unsloth_nb.jobrun.events import Event, EventLog


def test_seq_is_dense_from_zero_and_reads_resume_from_a_cursor() -> None:
    log = EventLog("job")
    for step in range(1, 6):
        log.emit("metrics", step=step, loss=1.0 / step)
    assert [e.seq for e in log.read()] == [0, 1, 2, 3, 4]
    assert [e.data["step"] for e in log.read(after=2)] == [4, 5]
    assert log.read(after=4) == []


def test_unknown_kind_or_key_is_refused() -> None:
    log = EventLog("job")
    with pytest.raises(ValueError, match="unknown event kind"):
        log.emit("lossy", value=1)
    with pytest.raises(ValueError, match="unknown keys"):
        log.emit("metrics", step=1, los=2.0)


def test_persisted_log_reloads_and_continues(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog("job", path)
    log.emit("status", state="training", previous="starting")
    log.emit("metrics", step=1, loss=2.5)
    log.close()
    again = EventLog("job", path)
    assert [e.kind for e in again.read()] == ["status", "metrics"]
    assert again.emit("metrics", step=2, loss=2.0).seq == 2


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog("job", path)
    log.emit("metrics", step=1, loss=2.5)
    log.close()
    with path.open("a") as handle:
        handle.write('{"job_id": "job", "seq": 1, "ti')  # the process died mid-write
    again = EventLog("job", path)
    assert len(again) == 1
    again.emit("metrics", step=2, loss=2.0)
    again.close()
    assert [e.seq for e in EventLog("job", path).read()] == [0, 1]


def test_append_keeps_remote_seq_ignores_replays_and_refuses_gaps() -> None:
    log = EventLog("job")
    remote = [Event("job", i, 0.0, "metrics", {"step": i + 1}) for i in range(4)]
    assert log.append(remote[0]) and log.append(remote[1])
    assert log.append(remote[1]) is False  # a replay after reconnect
    with pytest.raises(ValueError, match="gap"):
        log.append(remote[3])


def test_wait_wakes_on_a_new_event_from_another_thread() -> None:
    log = EventLog("job")
    timer = threading.Timer(0.05, lambda: log.emit("log", level="info", message="hello"))
    timer.start()
    events = log.wait(after=-1, timeout=5)
    assert [e.data["message"] for e in events] == ["hello"]
    assert log.wait(after=0, timeout=0.01) == []


def test_subscribers_get_history_then_new_events_and_a_broken_one_does_no_harm() -> None:
    log = EventLog("job")
    log.emit("metrics", step=1, loss=1.0)
    seen: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("view bug")

    log.subscribe(broken, replay=False)
    unsubscribe = log.subscribe(lambda e: seen.append(e.seq))
    log.emit("metrics", step=2, loss=0.5)
    unsubscribe()
    log.emit("metrics", step=3, loss=0.25)
    assert seen == [0, 1]


def test_follow_yields_everything_until_done() -> None:
    log = EventLog("job")
    done = threading.Event()

    def produce() -> None:
        for step in range(1, 21):
            log.emit("metrics", step=step, loss=1.0)
        done.set()

    threading.Thread(target=produce).start()
    steps = [e.data["step"] for e in log.follow(poll=0.05, until=done.is_set)]
    assert steps == list(range(1, 21))


def test_a_read_only_follower_sees_another_writers_events_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    writer = EventLog("job", path)
    writer.emit("metrics", step=1, loss=1.0)
    follower = EventLog("job", path, read_only=True)
    seen: list[int] = []
    follower.subscribe(lambda e: seen.append(e.seq))
    writer.emit("metrics", step=2, loss=0.5)
    writer.emit("metrics", step=3, loss=0.25)
    assert follower.refresh() == 2
    assert follower.refresh() == 0
    assert seen == [0, 1, 2]
    with pytest.raises(RuntimeError, match="read-only"):
        follower.emit("log", level="info", message="no")
    writer.close()
    assert [e.seq for e in EventLog("job", path).read()] == [0, 1, 2]


def test_background_delivery_keeps_seq_order_delivers_everything_and_leaves_the_writer_free() -> None:
    """Events of a thread in deliver_in_background reach subscribers from another thread, in order, each once,
    all of them by the time the block ends, also when other threads emit at the same time."""
    import threading

    from unsloth_nb.jobrun.events import EventLog

    log = EventLog("j")
    seen: list[int] = []
    delivered_by: dict[int, str] = {}
    at_exit: list[list[int]] = []
    slow = threading.Event()
    stuck = threading.Event()

    def subscriber(event: Event) -> None:
        delivered_by[event.seq] = threading.current_thread().name
        if event.seq == 1:
            stuck.set()
            slow.wait(5)  # a subscriber stuck on the first event must not hold up the writer
        seen.append(event.seq)

    log.subscribe(subscriber)
    writer_done = threading.Event()

    def training() -> None:
        with log.deliver_in_background():
            for step in range(200):
                log.emit("metrics", step=step, loss=1.0)
                if step == 1:
                    stuck.wait(5)  # the delivery thread is now inside the subscriber, stuck on seq 1
            writer_done.set()
            slow.set()
        at_exit.append(list(seen))  # all delivered when the block ends

    def other() -> None:
        for _ in range(50):
            log.emit("log", level="info", message="x", source="test")

    trainer = threading.Thread(target=training, name="trainer")
    trainer.start()
    assert writer_done.wait(5), "the writer waited for a stuck subscriber"
    helper = threading.Thread(target=other)
    helper.start()
    trainer.join(10)
    helper.join(10)
    log.emit("status", state="succeeded")  # from this thread: delivered before emit returns
    assert seen == list(range(len(log))) and len(log) == 251
    assert at_exit[0][:200] == list(range(200)) or at_exit[0] == sorted(at_exit[0])
    assert set(range(200)) <= set(at_exit[0])
    assert delivered_by[1].startswith("unsloth-nb-events-")  # not the writer: it went on while seq 1 was stuck


def test_a_subscriber_that_joins_during_background_delivery_gets_each_event_once() -> None:
    import threading

    from unsloth_nb.jobrun.events import EventLog

    log = EventLog("j")
    early: list[int] = []
    late: list[int] = []
    log.subscribe(lambda e: early.append(e.seq))
    joined = threading.Event()

    def training() -> None:
        with log.deliver_in_background():
            for step in range(100):
                log.emit("metrics", step=step)
                if step == 50:
                    joined.wait(5)

    trainer = threading.Thread(target=training)
    trainer.start()
    while len(log) < 51:
        pass
    log.subscribe(lambda e: late.append(e.seq), replay=True)
    joined.set()
    trainer.join(10)
    assert early == list(range(100)) and late == list(range(100))


def test_a_subscriber_that_emits_gets_its_event_delivered_without_waiting() -> None:
    import time

    log = EventLog("j")
    seen: list[int] = []

    def echo(event: Event) -> None:
        seen.append(event.seq)
        if event.kind == "status":
            log.emit("log", level="info", message="saw a status", source="test")

    log.subscribe(echo)
    started = time.monotonic()
    log.emit("status", state="training")
    assert seen == [0, 1] and time.monotonic() - started < 1.0
