"""What the session's one trained SmolLM2 (the ``trained_smollm2`` fixture in conftest.py) hands its tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The demo's settings (demo_config): what the README says learns visibly on 2 CPU cores.
SMOLLM2_STEPS = 40


@dataclass
class TrainedSmolLM2:
    """The finished job (its model and tokenizer still in this process) and what the judge's fake API saw."""

    job: Any  # unsloth_nb.Job
    judge_calls: int
