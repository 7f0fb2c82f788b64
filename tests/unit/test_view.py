"""The job view: replay of a finished job, Stop, and a log window that stays small.

Widgets run without a front end: ``comm.create_comm`` returns a comm that
records what would go over the wire, which is also how the tests measure that
the log is not resent line by line.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from job_waiting import wait_for_state

from unsloth_nb.config import TrainConfig
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobs.controller import Job
from unsloth_nb.jobs.events import EventLog
from unsloth_nb.jobs.store import JobFolder, JobRecord, new_job_id
from unsloth_nb.ui.view import JobTable, JobView

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class RecordingComm:
    """Stands in for the kernel's comm: keeps every message a widget sends."""

    kernel = "recording"

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = uuid.uuid4().hex
        self.opened_with = kwargs
        self.sent: list[tuple[Any, Any]] = []

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, callback: Any) -> None:
        self.callback = callback

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.sent.append((data, buffers))

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def bytes_sent(self) -> int:
        return sum(len(json.dumps(data, default=str)) for data, _ in self.sent)


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    import comm

    opened: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        opened.append(RecordingComm(**kwargs))
        return opened[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    yield opened


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unsloth_nb.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


def recorded_job(steps: int = 40, log_lines: int = 3, end: str | None = "succeeded", placement: str = "local") -> Job:
    """A job folder whose event log is written through the real EventLog, then loaded like a reattach."""
    config = TrainConfig.from_dict({"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset": "qa.jsonl"})
    record = JobRecord(id=new_job_id() + uuid.uuid4().hex[:4], model=config.model.name, dataset="qa.jsonl", placement=placement)
    folder = JobFolder.create(record, config.to_dict())
    log = EventLog(record.id, folder.events_path)
    log.emit("status", state="created", placement=placement)
    if placement == "runpod":
        log.emit("cost", usd_so_far=0.12, usd_per_hour=1.64, gpu="NVIDIA A100 80GB PCIe")
    log.emit("status", state="training", previous="created")
    for step in range(1, steps + 1):
        log.emit("metrics", step=step, loss=3.0 / step, learning_rate=2e-4, tokens_per_second=250.0)
        log.emit("progress", step=step, total_steps=steps, eta_seconds=float(steps - step))
    for i in range(log_lines):
        log.emit("log", level="info", message=f"line {i}", source="engine")
    if end is not None:
        log.emit("artifact", name="adapter", path=str(folder.outputs / "adapter"))
        log.emit("status", state=end, previous="training")
        record.state = end
        record.finished = time.time()
        folder.save_record(record)
    log.close()
    return Job.load(record.id)


def test_a_finished_job_replays_its_whole_history(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=40)

    view = JobView(job)

    assert view.state == "succeeded"
    assert (view.progress.value, view.progress.max, view.progress.bar_style) == (40, 40, "success")
    status = view.status_html.value
    assert "succeeded" in status and "step 40/40" in status and "loss 0.0750" in status
    assert view.stop_button.layout.display == "none", "a finished job has no Stop"
    assert view.chart.snapshot()["steps"] == 40
    assert view.log_html.value == "", "a folded log sends nothing"
    view.log_box.selected_index = 0  # the user opens the Log
    assert "saved adapter" in view.log_html.value
    assert "Saved adapter" in view.message_html.value
    bundle = view._repr_mimebundle_()
    assert WIDGET_VIEW in bundle
    assert "<svg" in bundle["text/html"]


def test_a_remote_job_shows_its_gpu_price_and_cost(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=5, placement="runpod")

    status = JobView(job).status_html.value

    assert "RunPod NVIDIA A100 80GB PCIe" in status and "$1.64/h" in status and "$0.12 so far" in status


def test_without_a_front_end_the_view_is_text_and_a_static_picture() -> None:
    job = recorded_job(steps=10)

    bundle = JobView(job)._repr_mimebundle_()

    assert WIDGET_VIEW not in bundle
    assert bundle["text/plain"].startswith("succeeded · job ")
    assert "step 10/10" in bundle["text/plain"]
    assert "<svg" in bundle["text/html"]


def test_the_log_window_keeps_only_the_newest_lines(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=2, log_lines=1000)

    view = JobView(job, max_log_lines=50)
    view.log_box.selected_index = 0

    text = view.log_html.value
    lines = text.split("</pre>")[0].split("\n")
    assert len(lines) == 50
    assert lines[-1].endswith("→ succeeded")
    assert "line 952\n" in text and "line 951\n" not in text


def test_log_lines_reach_the_page_in_throttled_bounded_updates(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=1, log_lines=0, end=None)
    view = JobView(job, interval=3600.0, max_log_lines=100)
    log_widget = view.log_html
    log_comm = next(c for c in comms if c.comm_id == log_widget.comm.comm_id)
    for i in range(100):
        job.log.emit("log", level="info", message=f"while folded {i:04d}", source="library")
    view.flush()
    assert log_comm.sent == [], "a folded log sends nothing"
    view.log_box.selected_index = 0
    before = len(log_comm.sent)

    for i in range(2000):
        job.log.emit("log", level="info", message=f"tokenizing shard {i:04d}", source="engine")
    view.flush()

    updates = log_comm.sent[before:]
    # the flusher may flush once when the first line arrives, then sleeps for the interval: 2000 lines, ≤ 2 updates
    assert 1 <= len(updates) <= 2
    last = updates[-1][0]["state"]["value"]
    assert "tokenizing shard 1999" in last and "tokenizing shard 1899" not in last
    assert log_comm.bytes_sent() < 30_000  # every line once in its own message would be > 100 kB
    view.close()


def test_stop_button_cancels_a_running_job(comms: list[RecordingComm], tiny_model: Path) -> None:
    import unsloth_nb

    job = unsloth_nb.train(
        model=str(tiny_model),
        dataset=str(demo_dataset_path()),
        train__max_steps=100_000,
        train__max_seq_length=512,
        placement="local",
    )
    view = JobView(job)
    assert not view.stop_button.disabled
    wait_for_state(job, "training")

    view.stop_button.click()
    job.wait(timeout=300)

    assert job.state == "cancelled"
    view.flush()
    assert view.stop_button.layout.display == "none"
    assert view.progress.bar_style == "warning"
    assert "Stopped: stopped by the user" in view.message_html.value


def test_job_table_lists_jobs_as_html_and_text() -> None:
    done = recorded_job(steps=3)
    running = recorded_job(steps=1, end=None)
    from unsloth_nb.jobs.store import list_jobs

    table = JobTable(list_jobs())

    assert len(table) == 2
    assert done.id in table._repr_html_() and running.id in repr(table)
    assert "<table" in table._repr_html_()
    assert "succeeded" in repr(table)
