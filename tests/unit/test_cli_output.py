"""What the CLI prints when its output is not a terminal, and what `jobs` and `plan --calibration` say.

The commands run through the real entry point (``unsloth_nb.cli.main``) on real job
folders; the progress printer gets a real (non-terminal) stream and real events.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from unsloth_nb.cli import main
from unsloth_nb.jobrun.events import Event
from unsloth_nb.jobrun.store import JobFolder, JobRecord
from unsloth_nb.ui.console import JobStatus, ProgressPrinter, closing_line

LONG = "The pod could not be created: " + "no NVIDIA RTX A4000 is free in the SECURE cloud right now; " * 3


def event(seq: int, kind: str, when: float = 1_800_000_000.0, **data: object) -> Event:
    return Event("job-1", seq, when + seq, kind, dict(data))


def finished_job(job_id: str, model: str, seconds: float = 754.0) -> JobFolder:
    created = 1_800_000_000.0
    record = JobRecord(id=job_id, model=model, dataset="qa.jsonl", state="succeeded", created=created, finished=created + seconds)
    folder = JobFolder.create(record, {"model": {"name": model}, "dataset": {"path": "qa.jsonl"}})
    events = [
        event(0, "status", created, state="created"),
        event(1, "status", created, state="training", previous="created"),
        Event(job_id, 2, created + seconds - 1, "metrics", {"step": 40, "loss": 0.6}),
        Event(job_id, 3, created + seconds, "status", {"state": "succeeded", "previous": "training"}),
    ]
    folder.events_path.write_text("".join(e.to_json() + "\n" for e in events), encoding="utf-8")
    return folder


def test_a_long_message_stays_on_one_line_when_not_a_terminal() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream=stream)

    printer(event(0, "log", level="warning", message=LONG, source="runpod"))
    printer(event(1, "status", state="training", previous="starting"))
    printer(event(2, "progress", step=3, total_steps=40, eta_seconds=61.0, elapsed_seconds=9.0))

    lines = stream.getvalue().splitlines()
    assert lines[0] == LONG.strip() or lines[0] == LONG
    assert all(not line.startswith(("$", "ETA", "| ")) for line in lines)


def test_a_message_is_printed_once_however_often_it_arrives() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream=stream)
    plan_warning = "No train.save_steps: if the pod is lost the job fails and must start again."
    printer.already_said([plan_warning])

    printer(event(0, "log", level="warning", message=plan_warning, source="runpod"))
    for seq in range(1, 4):
        printer(event(seq, "log", level="warning", message=LONG, source="runpod"))
    printer(event(4, "error", message=LONG))
    printer(event(5, "status", state="failed", previous="starting", reason=LONG))

    out = stream.getvalue()
    assert out.count(LONG.strip()) == 1
    assert plan_warning not in out


def test_the_last_line_of_a_runpod_job_gives_its_final_cost() -> None:
    status = JobStatus()
    status.update(event(0, "cost", usd_so_far=0.0123, usd_per_hour=0.44, gpu="A40"))
    status.update(event(1, "status", state="succeeded"))

    class Ended:
        id, state, adapter_path, error = "job-1", "succeeded", Path("/tmp/adapter"), None

    line = closing_line(Ended(), status)
    assert line.startswith("job job-1 succeeded.") and line.endswith("Final cost: $0.01 (A40).")
    Ended.state, Ended.error = "failed", "the pod was evicted"
    assert closing_line(Ended(), status) == "job job-1 failed: the pod was evicted Final cost: $0.01 (A40)."


def test_jobs_show_gives_the_real_elapsed_of_a_finished_job(capsys: pytest.CaptureFixture[str]) -> None:
    finished_job("20261201-100000-aaaa", "unsloth/Qwen3-0.6B", seconds=754.0)

    assert main(["jobs", "show", "20261201-100000-aaaa"]) == 0

    out = capsys.readouterr().out
    assert "elapsed 12:34" in out


def test_jobs_list_does_not_cut_model_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = str(tmp_path / "a" / "rather" / "long" / "folder" / "of" / "models" / "SmolLM2-135M-Instruct")
    finished_job("20261201-100000-bbbb", path)

    assert main(["jobs"]) == 0

    out = capsys.readouterr().out
    assert path in out


def test_plan_calibration_lists_the_last_jobs_and_their_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--calibration"]) == 0
    assert "no finished local job yet" in capsys.readouterr().out


def test_plan_calibration_shows_a_finished_jobs_error(capsys: pytest.CaptureFixture[str]) -> None:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.planning.hardware import LocalHardware
    from unsloth_nb.planning.planner import plan

    config = TrainConfig.from_dict(
        {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset": "qa.jsonl", "train": {"max_steps": 40}}
    )
    made = plan(config, None, LocalHardware("cpu", "Test CPU", 16.0, 12.0, ram_gb=16.0, cpu_count=2))
    folder = finished_job("20261201-100000-cccc", made.model, seconds=2 * made.estimated_seconds)
    folder.write_json("plan.json", made.to_dict())
    metrics = [
        Event(folder.path.name, 10 + s, 1_800_000_000.0 + 5 + s, "metrics", {"step": s, "loss": 1.0}) for s in range(1, 41)
    ]
    folder.events_path.write_text("".join(e.to_json() + "\n" for e in metrics), encoding="utf-8")

    assert main(["plan", "--calibration"]) == 0

    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "20261201-100000-cccc" in line)
    assert "SmolLM2-135M-Instruct" in row and "cpu:Test CPU:2" in row and row.rstrip().endswith("-50%")


def test_the_dataset_line_names_the_columns_read_and_the_rows_cut() -> None:
    from unsloth_nb.ui.console import dataset_line

    line = dataset_line(
        {
            "rows": 4,
            "format": "qa",
            "skipped": 0,
            "columns": {"question": "Question", "answer": "Answer"},
            "truncated_rows": 1,
            "tokens_cut": 120,
        }
    )

    assert line == "dataset: 4 rows, qa (Question->question, Answer->answer), 0 skipped, 1 truncated (120 tokens cut)"


def test_the_progress_line_pairs_each_step_with_its_own_loss_after_a_resume() -> None:
    """A step's progress event comes before its loss, and a resumed pod logs again from its checkpoint."""
    status = JobStatus()
    replay = [
        event(0, "status", state="training", previous="starting"),
        event(1, "progress", step=31, total_steps=40),
        event(2, "metrics", step=31, loss=0.31),
        event(3, "progress", step=32, total_steps=40),  # the pod is lost before step 32's loss is logged
    ]
    for e in replay:
        status.update(e)
    parts = status.progress_parts(1.0)
    assert parts[:2] == ["step 32/40", "loss 0.3100 (step 31)"]
    # the new pod resumes from checkpoint-20: its first step, then that step's loss
    status.update(event(4, "progress", step=21, total_steps=40))
    assert status.progress_parts(1.0)[:2] == ["step 21/40", "loss 0.3100 (step 31)"]
    status.update(event(5, "metrics", step=21, loss=0.21))
    assert status.progress_parts(1.0)[:2] == ["step 21/40", "loss 0.2100"]
    status.update(event(6, "progress", step=32, total_steps=40))
    status.update(event(7, "metrics", step=32, loss=0.05))
    assert status.progress_parts(1.0)[:2] == ["step 32/40", "loss 0.0500"]


def _ended_pid() -> int:
    """The id of a process that has exited (and been reaped): an owner that died."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_jobs_show_a_job_whose_owner_died_as_owner_gone(capsys: pytest.CaptureFixture[str]) -> None:
    """As ``runpod list`` does: a ``training`` nobody runs any more is not shown as plain ``training``."""
    from unsloth_nb.ui.jobs_table import JobTable

    orphan = JobRecord(id="20261201-100000-dead", model="m", dataset="qa.jsonl", placement="runpod", state="training")
    orphan.pid = _ended_pid()
    watched = JobRecord(id="20261201-100000-live", model="m", dataset="qa.jsonl", placement="runpod", state="training")
    for record in (orphan, watched):
        JobFolder.create(record, {"model": {"name": "m"}, "dataset": {"path": "qa.jsonl"}})

    assert main(["jobs"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("2026")}
    assert "training, owner gone" in lines[orphan.id]
    assert "owner gone" not in lines[watched.id] and "training" in lines[watched.id]
    assert "load_job" in out

    assert main(["jobs", "--json"]) == 0
    listed = {job["id"]: job["owner_gone"] for job in json.loads(capsys.readouterr().out)}
    assert listed == {orphan.id: True, watched.id: False}

    rows = {row["id"]: row for row in JobTable([orphan, watched]).row_dicts()}
    assert rows[orphan.id]["state"] == "training, owner gone" and rows[orphan.id]["result"].startswith("owner gone")
    assert rows[watched.id]["state"] == "training" and rows[watched.id]["result"] == "running"
