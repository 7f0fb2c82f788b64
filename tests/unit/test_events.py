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
