"""The seams a new capability plugs into: a placement is one backend, a step of a job is one phase.

A toy phase and a toy backend, a few lines each, run a whole job through the real
controller: its events reach the live chart and its artifact reaches the job record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import unsloth_nb
from unsloth_nb.backends.base import JobContext, JobHooks, PlacementInputs, PriceRequest, Pricing, SecretNeed
from unsloth_nb.backends.registry import backend_names, register_backend, unregister_backend
from unsloth_nb.config import TrainConfig
from unsloth_nb.jobrun import lifecycle
from unsloth_nb.jobrun.controller import load_job
from unsloth_nb.jobrun.runtime import run_in_thread
from unsloth_nb.phases.base import Artifact, PhaseContext, PhaseNeeds, PhaseResult
from unsloth_nb.phases.registry import all_phases, register_phase, unregister_phase
from unsloth_nb.phases.runner import phases_for, run_phases
from unsloth_nb.planning.plan_text import format_plan
from unsloth_nb.ui.chart import LossChart


class CountPhase:
    """A phase that 'trains' five steps and writes one file."""

    name, state, runs_after_stop = "count", lifecycle.TRAINING, False

    def applies(self, config: TrainConfig) -> bool:
        return True

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        return PhaseNeeds()

    def run(self, ctx: PhaseContext) -> PhaseResult:
        for step in range(1, 6):
            ctx.hooks.emit("metrics", step=step, loss=1.0 / step)
        out = ctx.output_dir / "count.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("5 steps\n", encoding="utf-8")
        return PhaseResult(artifacts={"count": Artifact("count", "count.txt", kind="file")}, metrics={"global_step": 5})


class ToyBackend:
    """A placement that takes every job and runs its model phases in a thread of this process."""

    name, label, in_process, rents = "toy", "a toy machine", False, False

    def place(self, inputs: PlacementInputs, *, chosen: bool) -> str | None:
        inputs.reasons.append("the toy backend takes every job.")
        return "cpu"

    def secrets(self, config: TrainConfig) -> list[SecretNeed]:
        return []

    def startup_seconds(self, weights_gb: float) -> float:
        return 1.0

    def may_have_model_path(self, config: TrainConfig) -> bool:
        return True

    def plan_notes(self, config: TrainConfig) -> list[tuple[str, bool]]:
        return [("toy jobs cost nothing", False)]

    def price(self, request: PriceRequest) -> Pricing:
        return Pricing()

    def plan_target(self, plan: object) -> str:
        return "toy CPU"

    def where(self, plan: object) -> str:
        return "toy"

    def stop_hint(self) -> str:
        return ""

    async def run(self, ctx: JobContext) -> PhaseResult:
        phase_ctx = PhaseContext(ctx.config, ctx.output_dir, JobHooks(ctx), dataset=ctx.dataset, shared=ctx.shared)
        return await run_in_thread(
            run_phases, phase_ctx, phases_for(ctx.config, runs_on="model"), name="toy", context=ctx.context
        )

    async def reattach(self, ctx: JobContext) -> PhaseResult:
        raise NotImplementedError

    def end_all_now(self, reason: str) -> None:
        pass


@pytest.fixture
def toy_seams() -> Iterator[None]:
    """The toy backend first in auto placement's order, and a job made of the toy phase alone."""
    phases = all_phases()
    register_backend(ToyBackend(), before="local")
    for phase in phases:
        unregister_phase(phase.name)
    register_phase(CountPhase())
    try:
        yield
    finally:
        unregister_phase("count")
        for phase in phases:
            register_phase(phase)
        unregister_backend("toy")


def test_a_toy_phase_on_a_toy_backend_reaches_the_chart_and_the_job_record(toy_seams: None, tmp_path: Path) -> None:
    assert backend_names()[:2] == ["toy", "local"]
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"q{i}?", "answer": f"a{i}."}) + "\n" for i in range(8)), encoding="utf-8")

    prepared_plan = unsloth_nb.plan(model="toy/model-135M", dataset=str(data))
    assert prepared_plan.placement == "toy"
    assert "Plan: toy/model-135M on a toy machine (toy CPU)" in format_plan(prepared_plan)
    assert "toy jobs cost nothing" in prepared_plan.reasons

    job = unsloth_nb.train(model="toy/model-135M", dataset=str(data))
    chart = LossChart().attach(job.log)
    job.wait(timeout=30)

    assert job.state == "succeeded" and job.placement == "toy"
    states = [e.data["state"] for e in job.events(kinds={"status"})]
    assert states == ["created", "planning", "training", "succeeded"]
    assert chart.summary().startswith("LossChart: step 5")
    assert chart.snapshot()["steps"] == 5

    record = load_job(job.id).record
    assert record.result is not None and record.result["artifacts"]["count"]["path"] == "count.txt"
    assert Path(record.artifacts["count"]).read_text(encoding="utf-8") == "5 steps\n"
    assert job.global_step == 5
    results = job.events(kinds={"result"})
    assert [e.data["phase"] for e in results] == ["count"]


def test_a_phase_goes_where_it_is_registered(toy_seams: None) -> None:
    class Before(CountPhase):
        name = "before"

    register_phase(Before(), before="count")
    try:
        assert [p.name for p in all_phases()] == ["before", "count"]
    finally:
        unregister_phase("before")


def test_client_phases_run_here_around_the_backends_and_name_their_keys(
    toy_seams: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Judge(CountPhase):
        """A phase that calls a paid API: it runs on this machine, after the model's phases."""

        name, state = "judge", lifecycle.EVALUATING

        def needs(self, config: TrainConfig) -> PhaseNeeds:
            return PhaseNeeds(secrets=("JUDGE_API_KEY",), runs_on="client", why="to judge the answers")

        def run(self, ctx: PhaseContext) -> PhaseResult:
            assert "count" in ctx.result.artifacts  # it sees what the model's phases made
            return PhaseResult(metrics={"judged": 5})

    register_phase(Judge(), after="count")
    data = tmp_path / "qa.jsonl"
    data.write_text(json.dumps({"question": "q?", "answer": "a."}) + "\n", encoding="utf-8")
    try:
        with pytest.raises(unsloth_nb.UnslothNbError, match="JUDGE_API_KEY is not set; it is needed to judge the answers"):
            unsloth_nb.train(model="toy/model-135M", dataset=str(data))
        monkeypatch.setenv("JUDGE_API_KEY", "test-key")
        job = unsloth_nb.train(model="toy/model-135M", dataset=str(data), wait=True)
    finally:
        unregister_phase("judge")

    assert [e.data["phase"] for e in job.events(kinds={"result"})] == ["count", "judge"]
    assert [e.data["state"] for e in job.events(kinds={"status"})][-3:] == ["training", "evaluating", "succeeded"]
    assert load_job(job.id).record.result["metrics"] == {"global_step": 5, "judged": 5}


class Step:
    """A phase that records that it ran; ``stop`` makes it stop early itself, ``press`` presses Stop while it runs."""

    def __init__(self, name: str, state: str, *, after_stop: bool = False, stop: bool = False, press: bool = False) -> None:
        self.name, self.state, self.runs_after_stop = name, state, after_stop
        self.stop, self.press = stop, press

    def applies(self, config: TrainConfig) -> bool:
        return True

    def needs(self, config: TrainConfig) -> PhaseNeeds:
        return PhaseNeeds()

    def run(self, ctx: PhaseContext) -> PhaseResult:
        if self.press:
            ctx.hooks.stop()  # type: ignore[attr-defined]  # LogHooks: the user presses Stop now
        return PhaseResult(metrics={self.name: True}, stopped=self.stop)


def test_stop_between_phases_ends_the_run_and_a_phase_that_stopped_early_still_gets_saved(tmp_path: Path) -> None:
    from unsloth_nb.engine import LogHooks
    from unsloth_nb.jobrun.events import EventLog

    load, train, save = (
        Step("load", lifecycle.STARTING, press=True),
        Step("train", lifecycle.TRAINING),
        Step("save", lifecycle.SAVING, after_stop=True),
    )
    hooks = LogHooks(EventLog("stop-between"))
    result = run_phases(PhaseContext(TrainConfig(), tmp_path, hooks), [load, train, save])
    assert hooks.states == ["starting"] and result.stopped and set(result.metrics) == {"load"}
    assert "Stopped before training started." in [e["message"] for e in hooks.log.read(kinds={"log"})]

    train_stops = Step("train", lifecycle.TRAINING, stop=True)
    evaluate = Step("evaluate", lifecycle.EVALUATING)
    hooks = LogHooks(EventLog("stopped-within"))
    result = run_phases(
        PhaseContext(TrainConfig(), tmp_path, hooks), [Step("load", lifecycle.STARTING), train_stops, save, evaluate]
    )
    assert hooks.states == ["starting", "training", "saving"] and result.stopped
    assert [e["phase"] for e in hooks.log.read(kinds={"result"})] == ["load", "train", "save"]
