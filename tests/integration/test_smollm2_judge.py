"""Did it get better? SmolLM2-135M fine-tuned on the demo's Super Bowl LIX rows, judged against its base on
held-out questions (worded differently from every training row) by a deterministic judge served by the fake
OpenAI API: it prefers the answer holding more of the reference's key facts (names, numbers).

The job (training and its judge phase) is the session's one trained SmolLM2 (``trained_smollm2`` in conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures import judge_requests
from smollm2_job import TrainedSmolLM2


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_fine_tune_wins_a_majority_against_its_base(trained_smollm2: TrainedSmolLM2) -> None:
    job = trained_smollm2.job
    assert job.state == "succeeded", job.error
    report = job.evaluation
    assert report is not None and report.error is None
    summary = "\n".join(report.summary_lines())
    print(summary)
    if os.environ.get("UNSLOTH_NB_JUDGE_RESULT"):
        Path(os.environ["UNSLOTH_NB_JUDGE_RESULT"]).write_text(summary + "\n" + report.table.to_string() + "\n")
    n = len(report.rows)
    assert n >= 10 and trained_smollm2.judge_calls == judge_requests(job)
    # a majority of the judged score (ties count half), with the whole 95 % interval above a coin toss
    assert report.win_rate is not None and report.win_rate > 0.5, summary
    assert report.ci95 is not None and report.ci95[0] > 0.5, summary
    assert report.wins > report.losses, summary
