"""When a RunPod rental asks first: runpod.confirm_above_usd against the estimate capped by max_cost_usd.

Plans come from the real planner; only their cost figures are set per case, so
each rule is checked at an exact figure. The CLI cases run the real entry point
(stdin is not a terminal under pytest, so a question becomes a refusal).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from unsloth_nb.cli import main
from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary
from unsloth_nb.demo import demo_dataset_path
from unsloth_nb.jobrun.store import jobs_root
from unsloth_nb.planning.planner import LocalHardware, Plan, plan
from unsloth_nb.planning.rental import asking_because, rental_cost, rental_note, rental_question

CPU_ONLY = LocalHardware("cpu", "Test CPU", 16.0, 12.0, ram_gb=16.0, cpu_count=2)
ROWS = DatasetSummary(source="qa.jsonl", format="prompt_completion", rows=200, tokens=40_000, longest_tokens=400)


def config(placement: str = "runpod", **runpod: Any) -> TrainConfig:
    data = {"model": {"name": "unsloth/Llama-3.2-1B-Instruct"}, "dataset": {"path": "qa.jsonl"}, "placement": placement}
    return TrainConfig.from_dict({**data, "runpod": runpod})


def plan_costing(cost: float | None, per_hour: float | None = 0.79, placement: str = "runpod") -> Plan:
    """A real plan for a small job, with the estimate and hourly price under test."""
    base = plan(config(placement), ROWS, CPU_ONLY)
    assert base.placement == placement
    return dataclasses.replace(base, estimated_cost_usd=cost, usd_per_hour=per_hour)


def test_the_default_threshold_is_one_dollar() -> None:
    assert TrainConfig().runpod.confirm_above_usd == 1.0


def test_a_job_under_the_threshold_rents_without_asking() -> None:
    cheap = plan_costing(0.12)

    assert rental_question(cheap, config()) is None
    assert rental_note(cheap, config()) == (
        "Renting without asking: estimated $0.12 is within runpod.confirm_above_usd ($1.00); set it to 0 to always be asked."
    )


def test_a_job_over_the_threshold_asks_with_its_cost_and_price() -> None:
    dear = plan_costing(2.40)

    assert rental_question(dear, config()) == "Rent a RunPod GPU for this job (estimated $2.40 at $0.79/h)?"
    assert asking_because(dear, config()) == "estimated $2.40 is above runpod.confirm_above_usd ($1.00)"
    assert rental_note(dear, config()) is None
    assert rental_question(dear, config(confirm_above_usd=5)) is None  # a higher threshold lets it through


def test_a_job_exactly_at_the_threshold_does_not_ask() -> None:
    assert rental_question(plan_costing(1.00), config()) is None
    assert rental_question(plan_costing(1.01), config()) is not None


def test_an_unknown_estimate_always_asks() -> None:
    unknown = plan_costing(None, per_hour=None)

    for settings in ({}, {"confirm_above_usd": 1000.0}, {"confirm_above_usd": 1000.0, "max_cost_usd": 0.5}):
        assert rental_cost(unknown, config(**settings)) is None
        assert rental_question(unknown, config(**settings)) is not None, settings
        assert rental_note(unknown, config(**settings)) is None
    assert rental_question(unknown, config()) == "Rent a RunPod GPU for this job (estimated cost unknown)?"
    assert asking_because(unknown, config()) == "its estimated cost is unknown, so it asks first"
    assert (
        rental_question(plan_costing(None, per_hour=0.69), config(max_cost_usd=0.5))
        == "Rent a RunPod GPU for this job (estimated cost unknown at $0.69/h; runpod.max_cost_usd stops it at $0.50)?"
    )


def test_max_cost_caps_the_figure_under_the_threshold() -> None:
    long_job = plan_costing(12.00)

    assert rental_question(long_job, config()) is not None
    capped = config(max_cost_usd=0.5)
    assert rental_cost(long_job, capped) == 0.5
    assert rental_question(long_job, capped) is None
    assert rental_note(long_job, capped) == (
        "Renting without asking: at most $0.50 (runpod.max_cost_usd stops the pod there; estimated $12.00) "
        "is within runpod.confirm_above_usd ($1.00); set it to 0 to always be asked."
    )


def test_a_cap_above_the_threshold_still_asks_and_is_named() -> None:
    long_job = plan_costing(12.00)
    budget = config(max_cost_usd=5)

    assert rental_cost(long_job, budget) == 5
    assert rental_question(long_job, budget) == (
        "Rent a RunPod GPU for this job (estimated $12.00 at $0.79/h; runpod.max_cost_usd stops it at $5.00)?"
    )
    assert asking_because(long_job, budget) == (
        "at most $5.00 (runpod.max_cost_usd stops the pod there; estimated $12.00) is above runpod.confirm_above_usd ($1.00)"
    )
    assert rental_cost(plan_costing(2.0), budget) == 2.0  # a cap above the estimate changes nothing


def test_threshold_zero_always_asks() -> None:
    always = config(confirm_above_usd=0)

    for cost in (0.0, 0.01, 0.12):
        assert rental_question(plan_costing(cost), always) is not None, cost
        assert rental_note(plan_costing(cost), always) is None
    assert rental_question(plan_costing(0.0, per_hour=None), always) == "Rent a RunPod GPU for this job (estimated $0.00)?"
    assert asking_because(plan_costing(0.0), always) == "runpod.confirm_above_usd is 0, so every rental asks first"


def test_a_local_plan_never_asks() -> None:
    local = plan_costing(None, per_hour=None, placement="local")

    for settings in ({}, {"confirm_above_usd": 0}):
        assert rental_question(local, config("local", **settings)) is None
        assert rental_note(local, config("local", **settings)) is None


def test_the_cli_refuses_a_question_it_cannot_ask(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_not_a_real_key_for_tests")
    flags = ["train", "--model", "unsloth/Llama-3.3-70B-Instruct", "--dataset", str(demo_dataset_path()), "--placement", "runpod"]

    assert main([*flags, "--confirm-above", "0"]) == 2
    err = capsys.readouterr().err
    assert "runpod.confirm_above_usd is 0, so every rental asks first. Pass --yes" in err

    assert main([*flags, "--confirm-above", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "is above runpod.confirm_above_usd ($0.01). Pass --yes" in err and "raise --confirm-above" in err
    assert not jobs_root().is_dir() or list(jobs_root().iterdir()) == []


def test_importing_rental_stays_light() -> None:
    code = (
        "import sys, unsloth_nb.planning.rental\n"
        "heavy = [m for m in ('torch', 'transformers', 'unsloth_nb.planning.planner', 'unsloth_nb.config') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
