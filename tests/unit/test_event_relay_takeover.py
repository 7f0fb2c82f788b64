"""A pod's events reach the job's log exactly once, also when the process copying them dies.

The relay copies each event a pod's worker sends into the job's log and appends it, as
it came, to the pod's record (``pods/<pod_id>.events.jsonl``), from which a process that
reattaches continues. These tests kill the copying process at the worst moments (a
subscriber of the job's log sends SIGKILL the instant an event lands in the log), or
leave the files as such a death leaves them, and then reattach as ``load_job`` does:
the pod still there, or gone with a new pod resuming from a checkpoint.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from unsloth_nb.backends.base import JobContext
from unsloth_nb.backends.worker_link.relay import EventRelay
from unsloth_nb.config import TrainConfig
from unsloth_nb.jobrun.events import EventLog, read_events_file
from unsloth_nb.jobrun.store import JobFolder, JobRecord, new_job_id

RECEIVED = "dataset received: 24 training and 0 eval rows (5063 bytes, sha256 verified)"
HUB = "https://hub.example/me/superbowl-lora-checkpoints/tree/main/checkpoint-2"


def pod_events(job_id: str, items: list[tuple[str, dict[str, Any]]], first_seq: int = 0) -> list[dict[str, Any]]:
    """Events as a worker's ``GET /events`` answer carries them."""
    return [
        {"job_id": job_id, "seq": first_seq + i, "time": 1.0 + i, "kind": kind, "data": data}
        for i, (kind, data) in enumerate(items)
    ]


def first_pod(job_id: str) -> list[dict[str, Any]]:
    """What the first pod sent: it trains, pushes checkpoint-2 to the Hub, trains on."""
    return pod_events(
        job_id,
        [
            ("log", {"level": "info", "message": RECEIVED, "source": "worker"}),
            ("status", {"state": "training", "previous": "starting"}),
            ("metrics", {"step": 1, "loss": 2.5, "learning_rate": 0.0002}),
            ("progress", {"step": 1, "total_steps": 6}),
            ("metrics", {"step": 2, "loss": 2.25, "learning_rate": 0.0002}),
            ("progress", {"step": 2, "total_steps": 6}),
            ("checkpoint", {"step": 2, "path": "checkpoints/checkpoint-2", "url": HUB}),
            ("log", {"level": "info", "message": "pushed checkpoint-2 to the Hub", "source": "worker"}),
            ("metrics", {"step": 3, "loss": 2.0, "learning_rate": 0.0002}),
            ("progress", {"step": 3, "total_steps": 6}),
        ],
    )


def second_pod(job_id: str) -> list[dict[str, Any]]:
    """A new pod given the same job resumes from checkpoint-2: its first line is the first pod's first line."""
    items: list[tuple[str, dict[str, Any]]] = [
        ("log", {"level": "info", "message": RECEIVED, "source": "worker"}),
        ("log", {"level": "info", "message": "downloading checkpoint-2 from the Hub", "source": "worker"}),
        ("status", {"state": "training", "previous": "starting"}),
    ]
    for step in range(3, 7):
        items += [
            ("metrics", {"step": step, "loss": 2.0 - step / 10, "learning_rate": 0.0001}),
            ("progress", {"step": step, "total_steps": 6}),
        ]
    return pod_events(job_id, items)


def new_job() -> JobFolder:
    config = TrainConfig.from_dict({"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset": "qa.jsonl", "placement": "runpod"})
    record = JobRecord(id=new_job_id() + uuid.uuid4().hex[:4], model=config.model.name, dataset="qa.jsonl", placement="runpod")
    folder = JobFolder.create(record, config.to_dict())
    log = EventLog(record.id, folder.events_path)
    log.emit("status", state="training", placement="runpod")
    log.close()
    return folder


def relay_for(folder: JobFolder) -> tuple[EventRelay, EventLog]:
    """A process's relay over the job: what the RunPod backend builds, with this side's words as log lines."""
    record = folder.load_record()
    log = EventLog(record.id, folder.events_path)
    ctx = JobContext(
        job_id=record.id,
        config=TrainConfig.from_dict(folder.config()),
        plan=None,
        dataset=None,
        log=log,
        folder=folder,
        output_dir=folder.outputs,
        stop_event=threading.Event(),
        set_state=lambda state: None,
        record=record,
    )

    def say(message: str, level: str = "info") -> None:
        log.emit("log", level=level, message=message, source="runpod")

    return EventRelay(ctx, say, on_checkpoint=lambda _name: None), log


def record_of(folder: JobFolder, pod_id: str) -> list[dict[str, Any]]:
    path = folder.path / "pods" / f"{pod_id}.events.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def copied(events: list[dict[str, Any]]) -> Counter[str]:
    """The events a pod's record says reached the job's log, each step of the chart once (as the fault suite counts)."""
    highest: dict[str, int] = {}
    kept: Counter[str] = Counter()
    for event in events:
        kind, data = event["kind"], event["data"]
        if kind in ("status", "cost"):
            continue
        if kind in ("metrics", "progress"):
            if data["step"] <= highest.get(kind, -1):
                continue
            highest[kind] = data["step"]
        kept[json.dumps([kind, data], sort_keys=True)] += 1
    return kept


def in_the_log(folder: JobFolder) -> Counter[str]:
    """The pod events the job's log holds (this side's own lines and state changes left out)."""
    return Counter(
        json.dumps([e.kind, e.data], sort_keys=True)
        for e in read_events_file(folder.events_path)
        if e.kind not in ("status", "cost") and not (e.kind == "log" and e.data.get("source") == "runpod")
    )


#: The owner: copies the first pod's events and is killed the instant metrics of step 2 land in the job's log.
OWNER = """
import json, os, signal, sys
from unsloth_nb.jobrun.store import JobFolder
from tests.unit.test_event_relay_takeover import relay_for

folder = JobFolder.open(sys.argv[1])
relay, log = relay_for(folder)

def die_at_step_2(event):
    if event.kind == "metrics" and event.data.get("step") == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no flush: a kernel that died

log.subscribe(die_at_step_2, replay=False)
relay.receive("pod-1", json.loads(sys.stdin.read()))
"""


def test_an_owner_killed_just_after_copying_an_event_leaves_it_in_the_pods_record() -> None:
    folder = new_job()
    job_id = folder.load_record().id
    root = Path(__file__).resolve().parents[2]
    owner = subprocess.run(
        [sys.executable, "-c", OWNER, job_id], input=json.dumps(first_pod(job_id)), text=True, cwd=root, capture_output=True
    )
    assert owner.returncode == -signal.SIGKILL, owner.stderr

    # What the dead owner copied into the log is in the pod's record: nothing there that the record does not show.
    assert in_the_log(folder) == copied(record_of(folder, "pod-1"))

    # A new process reattaches; the pod is gone; a new pod resumes from checkpoint-2 and numbers its events from 0.
    relay, log = relay_for(folder)
    relay.take_over("pod-1")
    relay.from_start()
    relay.receive("pod-2", second_pod(job_id))
    relay.close()
    log.close()

    everything = record_of(folder, "pod-1") + record_of(folder, "pod-2")
    assert in_the_log(folder) == copied(everything)
    charted = [e["step"] for e in read_events_file(folder.events_path) if e.kind == "metrics"]
    assert charted == [1, 2, 3, 4, 5, 6]


def test_an_owner_killed_after_recording_an_event_but_before_copying_it_has_it_copied_by_the_next() -> None:
    folder = new_job()
    job_id = folder.load_record().id
    events = first_pod(job_id)
    relay, log = relay_for(folder)
    relay.receive("pod-1", events[:7])  # up to the Hub checkpoint
    relay.close()
    log.close()
    with (folder.path / "pods" / "pod-1.events.jsonl").open("a", encoding="utf-8") as record:
        record.write(json.dumps(events[7]) + "\n")  # recorded; the process died before the log had it

    relay, log = relay_for(folder)
    relay.take_over("pod-1")
    assert relay.cursor == 7
    relay.receive("pod-1", events[8:])  # the pod is still there: it answers from the cursor on
    relay.close()
    log.close()

    assert in_the_log(folder) == copied(events)
    assert [e["seq"] for e in record_of(folder, "pod-1")] == list(range(len(events)))


def test_a_reattach_to_a_live_pod_copies_nothing_twice() -> None:
    folder = new_job()
    job_id = folder.load_record().id
    events = first_pod(job_id)
    relay, log = relay_for(folder)
    relay.receive("pod-1", events[:8])
    relay.close()
    log.close()

    relay, log = relay_for(folder)
    relay.take_over("pod-1")
    relay.receive("pod-1", events[6:])  # an answer that repeats what was copied is skipped by seq
    relay.close()
    log.close()

    assert in_the_log(folder) == copied(events)
    assert [e["seq"] for e in record_of(folder, "pod-1")] == list(range(len(events)))


def test_a_new_pods_first_line_is_copied_even_when_it_repeats_the_lost_pods_last() -> None:
    folder = new_job()
    job_id = folder.load_record().id
    relay, log = relay_for(folder)
    relay.receive("pod-1", first_pod(job_id)[:4])  # its only log line so far: "dataset received"
    relay.close()
    log.close()

    relay, log = relay_for(folder)
    relay.take_over("pod-1")  # the pod is gone
    relay.from_start()
    relay.receive("pod-2", second_pod(job_id))
    relay.close()
    log.close()

    received = [e for e in read_events_file(folder.events_path) if e.kind == "log" and e.data["message"] == RECEIVED]
    assert len(received) == 2
    assert in_the_log(folder) == copied(record_of(folder, "pod-1") + record_of(folder, "pod-2"))


def test_a_record_line_torn_by_a_kill_does_not_swallow_the_lines_after_it() -> None:
    folder = new_job()
    job_id = folder.load_record().id
    events = first_pod(job_id)
    relay, log = relay_for(folder)
    relay.receive("pod-1", events[:5])
    relay.close()
    log.close()
    with (folder.path / "pods" / "pod-1.events.jsonl").open("a", encoding="utf-8") as record:
        record.write(json.dumps(events[5])[:20])  # the owner died in the middle of writing this line

    for start, end in ((5, 8), (8, 10)):  # two reattaches in turn, each with a live pod
        relay, log = relay_for(folder)
        relay.take_over("pod-1")
        assert relay.cursor == start - 1
        relay.receive("pod-1", events[start:end])
        relay.close()
        log.close()

    assert in_the_log(folder) == copied(events)
    assert [e["seq"] for e in record_of(folder, "pod-1")] == list(range(len(events)))
