"""Settings for the integration tests (the tiny model and the Super Bowl rows come from tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from smollm2_job import SMOLLM2_STEPS, TrainedSmolLM2

# torch's OpenMP threads spin while they wait for work. On a busy 2-core CI runner (other
# test processes, kernels, a browser) spinning threads starve each other: SmolLM2 steps took
# 10-48 s instead of 1.5 s. Sleeping waiters avoid that; read once, when torch first loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# ---------------------------------------------------------------------- one trained SmolLM2 for the slow tests
@pytest.fixture(scope="session")
def trained_smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedSmolLM2]:
    """SmolLM2-135M trained once per session on the demo's Super Bowl LIX rows, judged against its base.

    Why shared: training SmolLM2 is the slowest thing the suite does on a CPU, and the tests that
    need a trained real model (it learns; the judge prefers it) ask different questions of the
    same run. The job goes through the whole start flow (prepare -> start_job -> phases -> judge),
    as a user's would; each test asserts its own part.
    """
    from unsloth_nb.api import as_config
    from unsloth_nb.demo import demo_config, demo_eval_path
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare
    from unsloth_nb.models import smollm2_path
    from unsloth_nb.testing import fake_llm as behaviours
    from unsloth_nb.testing.fake_openai import FakeOpenAI

    home = tmp_path_factory.mktemp("smollm2-home")
    with pytest.MonkeyPatch.context() as patch, FakeOpenAI(behaviours.key_facts()) as fake:
        patch.setenv("UNSLOTH_NB_HOME", str(home))
        patch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
        config = demo_config(smollm2_path(), steps=SMOLLM2_STEPS)
        config["judge"] = {"base_url": fake.base_url, "eval_path": str(demo_eval_path()), "max_new_tokens": 48}
        job = start_job(prepare(as_config(config), Path(tmp_path_factory.mktemp("smollm2-work")))).wait(timeout=1400)
        judge_calls = fake.calls
    yield TrainedSmolLM2(job, judge_calls)
