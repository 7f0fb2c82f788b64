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
from chart_page import draw_in_node, needs_node
from job_waiting import wait_for_state

from unsloth_nb.config import TrainConfig
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.controller import load_job
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.jobrun.job import Job
from unsloth_nb.jobrun.store import JobFolder, JobRecord, new_job_id
from unsloth_nb.ui.jobs_table import JobTable
from unsloth_nb.ui.view import JobView

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
        record.artifacts["adapter"] = str(folder.outputs / "adapter")
        record.state = end
        record.finished = time.time()
        folder.save_record(record)
    log.close()
    return load_job(record.id)


def test_a_finished_job_replays_its_whole_history(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=40)

    view = JobView(job)

    assert view.state == "succeeded"
    status = view.status_html.value
    assert 'class="unsloth-nb-progress success" data-progress="40/40"' in status and "width:100.0%" in status
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
    assert 'class="unsloth-nb-progress warning"' in view.status_html.value
    assert "Stopped by the user" in view.message_html.value and "Stopped: stopped" not in view.message_html.value


def test_job_table_lists_jobs_as_html_and_text() -> None:
    done = recorded_job(steps=3)
    running = recorded_job(steps=1, end=None)
    from unsloth_nb.jobrun.store import list_jobs

    table = JobTable(list_jobs())

    assert len(table) == 2
    assert done.id in table._repr_html_() and running.id in repr(table)
    assert "<table" in table._repr_html_()
    assert "succeeded" in repr(table)


# ---------------------------------------------------------------------- issue 16: after the run
def test_a_running_view_leaves_the_final_state_in_the_saved_output(comms: list[RecordingComm]) -> None:
    """What a saved or nbconverted notebook keeps is the display's last bundle: it must be the end, not frame one."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    job = recorded_job(steps=0, log_lines=0, end=None)
    shell = InteractiveShell.instance()
    shell.user_ns["live_view"] = JobView(job, interval=0.01)
    with capture_output() as captured:
        shell.run_cell("live_view.display()")
        first = captured.outputs[0].data
        assert "Waiting" not in first["text/html"] and "LossChart" not in first["text/html"]
        for step in range(1, 21):
            job.log.emit("metrics", step=step, loss=2.0 / step, learning_rate=1e-4, grad_norm=0.5, memory_gb=1.25)
            job.log.emit("progress", step=step, total_steps=20)
        job.log.emit(
            "summary", train_runtime=12.5, global_step=20, final_loss=0.1, num_tokens=4321, peak_memory_gb=1.5, memory="RAM"
        )
        job.log.emit("status", state="succeeded", previous="training")
        deadline = time.monotonic() + 10
        while len(captured.outputs) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    view = shell.user_ns.pop("live_view")
    assert len(captured.outputs) == 2, "one display, then one update of it"
    final = captured.outputs[-1].data
    assert WIDGET_VIEW in final, "the live widget stays"
    assert "succeeded" in final["text/html"] and "step 20/20" in final["text/html"]
    assert "<svg" in final["text/html"], "the final chart as a static picture"
    assert "peak RAM" in final["text/html"] and "4,321" in final["text/html"], "the summary"
    assert "elapsed 00:00" not in final["text/plain"] or view.elapsed() < 0.5
    view.close()


def test_the_summary_and_status_line_report_eval_loss_memory_and_tokens(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=10, end=None)
    job.log.emit("metrics", step=10, eval_loss=0.4321)
    job.log.emit(
        "summary", train_runtime=83.0, global_step=10, final_loss=0.3, num_tokens=12345, peak_memory_gb=2.5, memory="GPU reserved"
    )
    job.log.emit("status", state="succeeded", previous="training")
    view = JobView(job)

    status = view.status_html.value
    assert "eval 0.4321" in status and "mem 2.50 GB" in status
    summary = dict(view.summary())
    assert summary["runtime"] == "01:23"
    assert summary["final loss"] == "0.3000" and summary["min loss"] == "0.3000 (step 10)"
    assert summary["eval loss"] == "0.4321" and summary["tokens seen"] == "12,345"
    assert summary["peak GPU memory (reserved)"] == "2.50 GB"
    assert view.summary_html in view.widget.children and "12,345" in view.summary_html.value
    view.close()


def test_a_failed_job_without_steps_has_no_chart_no_stop_and_no_summary(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=0, log_lines=0, end=None)
    job.log.emit("error", message="the dataset has no rows", error_type="DataError")
    job.log.emit("status", state="failed", previous="planning", reason="the dataset has no rows")
    view = JobView(job)

    assert view._ui().chart is None, "no empty chart for a job that logged nothing"
    assert view.stop_button.layout.display == "none"
    assert view.summary() == [] and view.summary_html is None
    assert "<svg" not in view.static_html() and "LossChart" not in view.static_html()
    assert "Error: the dataset has no rows" in view.message_html.value
    view.close()


def test_a_stop_by_a_kernel_restart_says_the_process_was_exiting(comms: list[RecordingComm]) -> None:
    job = recorded_job(steps=5, end=None)
    job.log.emit("log", level="info", message="stop requested: the Python process is exiting", source="controller")
    job.log.emit("status", state="cancelled", previous="training", reason="stopped by the user; checkpoint and adapter saved")
    view = JobView(job)

    outcome = view.outcome()
    assert "stopped by the user" not in outcome
    assert (
        "Stopped: the kernel's Python process was exiting (a kernel restart or shutdown); checkpoint and adapter saved" in outcome
    )
    view.close()


def test_job_show_draws_once() -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    job = recorded_job(steps=3)
    shell = InteractiveShell.instance()
    shell.user_ns["shown_job"] = job
    with capture_output() as captured:
        result = shell.run_cell("shown_job.show()")
    shell.user_ns.pop("shown_job")
    assert result.result is None, "show() returns nothing, so the cell does not display the view again"
    drawn = [o for o in captured.outputs if job.id in o.data.get("text/plain", "") and not getattr(o, "update", False)]
    assert len(drawn) == 1


def test_resume_continues_a_stopped_job_and_try_it_answers_beside_the_base_model(
    comms: list[RecordingComm], tiny_model: Path
) -> None:
    import unsloth_nb

    job = unsloth_nb.train(
        model=str(tiny_model),
        dataset=str(demo_dataset_path()),
        train__max_steps=24,
        train__save_steps=4,
        train__max_seq_length=512,
        train__warmup_steps=1,
        placement="local",
    )
    view = JobView(job)
    deadline = time.monotonic() + 240
    while not any(e.data.get("step", 0) >= 5 for e in job.events(kinds={"checkpoint"})) and time.monotonic() < deadline:
        time.sleep(0.05)
    job.cancel()
    job.wait(timeout=240)
    view.flush()
    assert job.state == "cancelled"
    assert view.can_resume() and view.resume_button in view._ui().top.children, "Resume offered after a stop"
    stopped_at = job.global_step

    view.resume_button.click()
    resumed = view.resumed[-1].job
    resumed.wait(timeout=240)
    assert resumed.state == "succeeded"
    steps = [e.data["step"] for e in resumed.events(kinds={"metrics"}) if "loss" in e.data]
    checkpoint_step = int(view.resume_checkpoint().name.split("-")[-1])
    assert steps[0] == checkpoint_step + 1 and steps[-1] == 24, f"continued from step {checkpoint_step} (stopped at {stopped_at})"
    assert "Resumed as" in view.resume_button.description

    second = view.resumed[-1]
    second.flush()
    assert second.try_it is not None and second.try_it.box in second.widget.children, "Try it is offered once a model exists"
    second.try_it.question.value = "Who won Super Bowl LIX?"
    thread = second.try_it.submit()
    assert thread is not None
    thread.join(timeout=120)
    assert set(second.answers[-1]) == {"question", "fine-tuned", "base model"}
    shown = second.try_it.answers.value
    assert "fine-tuned" in shown and "base model" in shown
    # The generate: section's defaults sample the random test model's loose bytes: none reaches the page as U+FFFD,
    # and the view says why the answers are noise.
    assert all("\ufffd" not in answer for answer in second.answers[-1].values())
    assert "\ufffd" not in shown and "random-weight test model" in shown
    second.close()
    view.close()


# ---------------------------------------------------------------------- the job list and comparing runs
def test_job_table_is_aligned_fits_a_cell_and_says_how_far_each_job_got(comms: list[RecordingComm]) -> None:
    from unsloth_nb.jobrun.store import list_jobs

    done = recorded_job(steps=12)
    failed = recorded_job(steps=0, log_lines=0, end=None)
    failed.log.emit("error", message="RunPod refused the API key while trying to create a pod. Check RUNPOD_API_KEY")
    failed._set_state("failed", "RunPod refused the API key")
    failed.record.error = "RunPod refused the API key while trying to create a pod. Check RUNPOD_API_KEY (create one)"
    failed.folder.save_record(failed.record)

    table = JobTable(list_jobs())
    rows = {row["id"]: row for row in table.row_dicts()}

    assert rows[done.id]["steps"] == "12" and rows[done.id]["final_loss"] == "0.2500"
    assert rows[done.id]["eval_loss"] == "–" and rows[failed.id]["final_loss"] == "–", "a dash says 'none', a blank looks broken"
    assert rows[done.id]["result"] == "adapter", "a short result, not the adapter's full path"
    assert len(rows[failed.id]["result"]) <= 48
    text = repr(table).splitlines()
    header = text[0]
    done_line = next(line for line in text if line.startswith(done.id))
    end = header.index("final loss") + len("final loss")
    assert done_line[end - len("0.2500") : end] == "0.2500", "numbers end under the end of their header"
    assert all(len(line.split("  ")[0]) == len(done.id) for line in text[1:3]), "ids on one line"
    html_table = table._repr_html_()
    head = html_table.split("</thead>")[0]
    assert head.count("<th class=") == 7, "a notebook cell gets seven columns; the rest is under Show"
    assert "<th class='num'>final loss</th>" in head and ".num { text-align: right" in head, "numbers align like headers"
    done_row = next(row for row in html_table.split("<tr>") if done.id in row)
    assert "<td class='id'>" + done.id + "<div class='sub'>" in done_row, "the id on one line, how long it took below"
    assert "<td class='wrap model'>" in done_row and "<td class='wrap result'>adapter" in done_row, "long text wraps"
    assert "white-space: nowrap" in head and "td.wrap { white-space: normal" in head

    bundle = table._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and "<table" in bundle["text/html"]


def test_show_and_compare_from_the_job_table(comms: list[RecordingComm]) -> None:
    from unsloth_nb.jobrun.store import list_jobs
    from unsloth_nb.ui.compare import CompareView

    first, second = recorded_job(steps=30), recorded_job(steps=60)
    table = JobTable(list_jobs())
    table_widget = table.widget.children[0]
    assert [row["id"] for row in table_widget.rows] == [second.id, first.id]

    table_widget._handle_custom_msg({"type": "show", "id": first.id}, [])
    assert isinstance(table.shown[-1], JobView) and table.shown[-1].job.id == first.id

    table_widget._handle_custom_msg({"type": "compare", "ids": [first.id, second.id]}, [])
    view = table.shown[-1]
    assert isinstance(view, CompareView)
    names = [t["name"] for t in view.spec()["traces"] if t.get("smooth")]
    assert len(names) == 2 and first.id in names[0] and second.id in names[1]
    snapshot = view.snapshot()
    assert snapshot["traces"][first.id]["x"][-1] == 30 and snapshot["traces"][second.id]["x"][-1] == 60
    assert "<svg" in view.static_html() and view.static_html().count("<path") == 2


def test_compare_is_a_public_function_that_overlays_jobs() -> None:
    import unsloth_nb

    jobs = [recorded_job(steps=20), recorded_job(steps=40)]
    view = unsloth_nb.compare([jobs[0].id, jobs[1]])

    figure = view.figure()
    smoothed_traces = [t for t in figure.data if t.showlegend is not False]
    assert [list(t.x)[-1] for t in smoothed_traces] == [20, 40]
    assert "20 steps" in view.text() and "40 steps" in view.text()


@needs_node
def test_the_compare_page_smooths_each_job_from_its_own_first_point() -> None:
    """Issue 16, screenshot 10: the second job's smoothed curve started at 6.16 above a raw 6.23 (the page carried
    the first job's EMA into it). Each smoothed trace starts on its own first raw point, as Python draws it."""
    from unsloth_nb.ui.compare import CompareView
    from unsloth_nb.ui.loss_series import smoothed

    view = CompareView([recorded_job(steps=20), recorded_job(steps=40), recorded_job(steps=7)])
    spec, tables, widths = view.spec(), view.tables(), view.widths()
    page = draw_in_node(spec, [view.snapshot()])
    figure = view.figure()
    smooth = [(i, trace) for i, trace in enumerate(spec["traces"]) if trace.get("smooth")]
    assert len(smooth) == 3
    for i, trace in smooth:
        raw = tables[trace["table"]]["loss"]
        drawn = page["drawn"][i]["y"]
        assert drawn[0] == pytest.approx(raw[0]), f"{trace['name']} starts at {drawn[0]}, its first raw point is {raw[0]}"
        assert drawn == pytest.approx(smoothed(raw, view.smoothing, widths[trace["table"]]), rel=1e-9)
        assert list(figure.data[i].y) == pytest.approx(drawn, rel=1e-9), "the static figure draws the same curve"


def test_the_status_line_and_the_chart_show_the_same_step(comms: list[RecordingComm]) -> None:
    """Issue 16, screenshot 04: the status line said step 3 above a curve at step 8 (two throttles). Now the chart
    sends only in the view's flush, right after the status line, so both show the step the events reached."""
    job = recorded_job(steps=1, log_lines=0, end=None)
    view = JobView(job, interval=3600.0)
    view.widget  # noqa: B018  (displayed: the flusher takes the first change, then waits an hour)
    job.log.emit("log", level="info", message="first change", source="engine")
    deadline = time.monotonic() + 10
    while view._dirty.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    chart_comm = next(c for c in comms if c.comm_id == view.chart.widget.comm.comm_id)

    def chart_step() -> float:
        for data, _ in reversed(chart_comm.sent):
            content = (data or {}).get("content") or {}
            x = (content.get("traces") or {}).get("train", {}).get("x")
            if content.get("type") in ("snapshot", "delta") and x:
                return x[-1]
        raise AssertionError("no chart rows sent")

    def status_step() -> int:
        return int(view.status_html.value.split("step ", 1)[1].split("/", 1)[0])

    for step in range(2, 41):
        job.log.emit("progress", step=step, total_steps=40, eta_seconds=1.0)  # the engine's order: progress, then loss
        job.log.emit("metrics", step=step, loss=3.0 / step, learning_rate=2e-4, tokens_per_second=250.0)
        if step % 5 == 0:
            sent = len(chart_comm.sent)
            job.log.emit("metrics", step=step, grad_norm=0.5)  # more events: the chart still waits for the view
            assert len(chart_comm.sent) == sent, "the chart sends nothing on its own"
            view.flush()
            assert status_step() == chart_step() == step
    view.close()


def test_a_running_jobs_view_opens_few_widgets_and_the_end_adds_the_rest(comms: list[RecordingComm]) -> None:
    """Widget traffic (issue 16): each widget opens three comms, so a running job's view keeps to a handful."""

    def opened() -> list[str]:
        return [str(c.opened_with.get("data", {}).get("state", {}).get("_model_name")) for c in comms]

    running = JobView(recorded_job(steps=5, end=None), interval=3600.0)
    running.widget  # noqa: B018  (displayed)
    kinds = opened()
    assert len(kinds) <= 18, f"{len(kinds)} comms for a running job's view: {kinds}"
    assert {"IntProgressModel", "LabelModel", "TextModel"}.isdisjoint(kinds), kinds
    assert running.summary_html is None and running.try_it is None and running.resume_button is None
    status = running.status_html.value
    assert "step 5/5" in status and 'data-progress="5/5"' in status, "the progress bar rides in the status line"
    running.close()

    done = JobView(recorded_job(steps=10))
    done.widget  # noqa: B018
    assert done.summary_html is not None and "final loss" in done.summary_html.value
    todo, null = [done.widget], []
    while todo:
        widget = todo.pop()
        if widget.has_trait("tooltip") and widget.tooltip is None:
            null.append(type(widget).__name__)
        todo.extend(getattr(widget, "children", ()) or ())
    assert null == [], f"widgets that would show a 'null' tooltip: {null}"
    done.close()
