"""One cost ledger: teacher, GPU and judge dollars shown together with their split, none overwriting another.

The events are written through the real EventLog into a real job folder and read back by the real CLI
(``unsloth-nb jobs show``), the terminal status, the closing line and the notebook view's facts.
"""

from __future__ import annotations

import time
import uuid

import pytest

from unsloth_nb.cli import main
from unsloth_nb.config import TrainConfig
from unsloth_nb.jobrun.controller import load_job
from unsloth_nb.jobrun.costs import CostLedger
from unsloth_nb.jobrun.events import EventLog
from unsloth_nb.jobrun.store import JobFolder, JobRecord, new_job_id
from unsloth_nb.ui.console import JobStatus, closing_line
from unsloth_nb.ui.job_facts import JobFacts

SPLIT = "$0.42 = teacher $0.10 + GPU $0.30 + judge $0.02"


def priced_job() -> str:
    """A finished RunPod job whose teacher, pod and judge each reported their running totals, judge last."""
    config = TrainConfig.from_dict({"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset": "qa.jsonl"})
    record = JobRecord(id=new_job_id() + uuid.uuid4().hex[:4], model=config.model.name, dataset="qa.jsonl", placement="runpod")
    folder = JobFolder.create(record, config.to_dict())
    log = EventLog(record.id, folder.events_path)
    log.emit("status", state="created", placement="runpod")
    log.emit("cost", source="teacher", usd_so_far=0.04)
    log.emit("cost", source="teacher", usd_so_far=0.10)
    log.emit("status", state="training", previous="created")
    log.emit("cost", usd_so_far=0.12, usd_per_hour=1.64, gpu="NVIDIA A40")
    log.emit("metrics", step=1, loss=1.5)
    log.emit("cost", usd_so_far=0.30, usd_per_hour=1.64, gpu="NVIDIA A40")
    log.emit("cost", source="judge", usd_so_far=0.02)
    log.emit("status", state="succeeded", previous="training")
    record.state, record.finished = "succeeded", time.time()
    folder.save_record(record)
    log.close()
    return record.id


def test_the_latest_cost_of_one_source_never_replaces_another() -> None:
    ledger = CostLedger()
    for data in (
        {"source": "teacher", "usd_so_far": 0.10},
        {"usd_so_far": 0.30, "gpu": "A40"},
        {"source": "judge", "usd_so_far": 0.01},
        {"source": "judge", "usd_so_far": 0.02},  # a running total: replaces the judge's own part
        {"usd_per_hour": 1.64},  # a price-only event adds nothing
    ):
        ledger.add(data)
    assert ledger.total == pytest.approx(0.42)
    assert ledger.text() == SPLIT
    assert ledger.to_json() == {"teacher": 0.10, "gpu": 0.30, "judge": 0.02}
    assert CostLedger({"gpu": 0.3}).text() == "$0.30"  # a GPU-only job reads as before
    assert CostLedger({"gpu": 0.0}).text() == "$0.00"
    serverless = CostLedger()
    serverless.add({"source": "serverless", "usd_so_far": 0.05})
    assert serverless.parts == {"gpu": 0.05}
    assert CostLedger({"teacher": 0.0012}).text() == "$0.0012 = teacher $0.0012"  # a cheap teacher is not "$0.00"


def test_the_cli_and_the_job_view_show_the_total_with_its_split(capsys: pytest.CaptureFixture[str]) -> None:
    job_id = priced_job()

    assert main(["jobs", "show", job_id]) == 0
    out = capsys.readouterr().out
    assert f"{SPLIT} so far" in out and "· $0.02 so far" not in out

    job = load_job(job_id, reattach=False)
    status = JobStatus()
    for event in job.events():
        status.update(event)
    assert status.usd_so_far == pytest.approx(0.42)
    assert closing_line(job, status).endswith(f"Final cost: {SPLIT} (NVIDIA A40).")

    facts = JobFacts(job)
    facts._follow()
    try:
        assert ("cost", SPLIT) in facts.summary()
        assert f"{SPLIT} so far" in facts.text()
    finally:
        if facts._unsubscribe is not None:
            facts._unsubscribe()


def test_a_teacher_only_local_job_gives_no_gpu_name_in_its_closing_line() -> None:
    from unsloth_nb.jobrun.events import Event

    status = JobStatus()
    status.update(Event("job-1", 0, 1.0, "cost", {"source": "teacher", "usd_so_far": 0.25}))

    class Ended:
        id, state, adapter_path, error = "job-1", "cancelled", None, None

    assert closing_line(Ended(), status) == "job job-1 cancelled. Final cost: $0.25 = teacher $0.25."


def test_the_plans_whole_job_figure_sums_the_parts_and_says_an_unknown_one() -> None:
    from unsloth_nb.jobrun.costs import estimate_line

    assert estimate_line({"gpu": 0.30}) is None  # one part: its own line says it
    assert estimate_line({"teacher": 0.10, "gpu": 0.30, "judge": 0.02}) == (
        f"Estimated cost of the whole job: ~{SPLIT[:5]} = teacher ~$0.10 + GPU ~$0.30 + judge ~$0.02 "
        "(the judge's part is an upper bound)."
    )
    unknown = estimate_line({"teacher": None, "gpu": 0.30})
    assert unknown == "Estimated cost of the whole job: more than ~$0.30 (a price is unknown) = teacher unknown + GPU ~$0.30."
