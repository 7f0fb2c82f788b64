"""Did it get better? SmolLM2-135M fine-tuned on the demo's Super Bowl LIX rows, judged against its base on
held-out questions (worded differently from every training row) by a deterministic judge served by the fake
OpenAI API: it prefers the answer holding more of the reference's key facts (names, numbers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unsloth_nb.testing import fake_llm as behaviours
from unsloth_nb.testing.fake_openai import FakeOpenAI


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_fine_tune_wins_a_majority_against_its_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from unsloth_nb.api import as_config
    from unsloth_nb.demo import demo_config, demo_eval_path
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.preflight import prepare
    from unsloth_nb.models import smollm2_path

    monkeypatch.setenv("OPENAI_API_KEY", FakeOpenAI.api_key)
    with FakeOpenAI(behaviours.key_facts()) as fake:
        config = demo_config(smollm2_path(), steps=40)
        config["judge"] = {"base_url": fake.base_url, "eval_path": str(demo_eval_path()), "max_new_tokens": 48}
        job = start_job(prepare(as_config(config), tmp_path)).wait(timeout=1400)
        assert job.state == "succeeded", job.error
        report = job.evaluation
        assert report is not None and report.error is None
        summary = "\n".join(report.summary_lines())
        print(summary)
        if os.environ.get("UNSLOTH_NB_JUDGE_RESULT"):
            Path(os.environ["UNSLOTH_NB_JUDGE_RESULT"]).write_text(summary + "\n" + report.table.to_string() + "\n")
        n = len(report.rows)
        assert n >= 10 and fake.calls == 2 * n
        # a majority of the judged score (ties count half), with the whole 95 % interval above a coin toss
        assert report.win_rate is not None and report.win_rate > 0.5, summary
        assert report.ci95 is not None and report.ci95[0] > 0.5, summary
        assert report.wins > report.losses, summary
