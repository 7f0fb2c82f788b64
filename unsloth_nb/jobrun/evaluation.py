"""Evaluate a finished job: ``job.evaluate()`` and ``unsloth-nb eval <job-id>``.

An entry point over a job record, so it sits above the evaluation steps in :mod:`unsloth_nb.evaluate.run` (which the
answers and judge phases use) and may load a job through the controller.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.evaluate.report import EvaluationReport
from unsloth_nb.evaluate.run import (
    EvaluationError,
    answers_for,
    heldout_for,
    judge_and_report,
    limit_questions,
    teacher_model_of,
)

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.llm import LLMClient


def evaluate_job(
    job: Job,
    *,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    eval_path: str | None = None,
    client: LLMClient | None = None,
    prompt_for_key: bool = False,
    **judge_overrides: Any,
) -> EvaluationReport:
    """Evaluate a job against its base model (a job id: ``load_job(job_id, reattach=False)`` first).

    ``judge_overrides`` replace ``judge.*`` fields (``model="claude-haiku-4-5", provider="anthropic"``). While
    ``job.serve()`` runs an endpoint for the job, both models' answers come from it; else the
    model comes from the job when it lives in this kernel, else the adapter is loaded here when the job's plan
    placed it here; a RunPod job's answers come from its pod (the answers artifact). Raises EvaluationError when
    the judge fails; the rows judged so far are in the report file either way.
    """
    from unsloth_nb.config import TrainConfig

    config: TrainConfig = job.config
    overrides = dict(judge_overrides)
    if eval_path:
        overrides["eval_path"] = eval_path
    judge = config.judge if not overrides else TrainConfig.from_dict(_with_judge(config, overrides)).judge
    config = dataclasses.replace(config, judge=judge)
    if judge.provider and prompt_for_key:
        from unsloth_nb.credentials import get_secret
        from unsloth_nb.llm import provider_secret

        variable = provider_secret(judge.provider)
        if variable:
            get_secret(variable, f"for the {judge.provider} judge", prompt=True)
    folder = job.folder.path
    inputs = folder / "inputs.json"
    base_dir = Path(json.loads(inputs.read_text())["base_dir"]) if inputs.is_file() else None
    heldout = limit_questions(heldout_for(config, folder, base_dir), judge)
    if not heldout.items:
        raise EvaluationError("no held-out questions to judge (all were near-duplicates of training prompts, or none were given)")
    output_dir = Path(job.record.output_dir) if job.record.output_dir else job.folder.outputs
    from unsloth_nb.backends.runpod_serverless.serve import served_endpoint

    served = served_endpoint(job)
    if served is not None:  # job.serve() runs: the endpoint answers for both models, nothing loads here
        from unsloth_nb.backends.runpod.api_types import api_key
        from unsloth_nb.evaluate.served import answers_from_endpoint

        answers = answers_from_endpoint(served, heldout, judge, output_dir, generate=config.generate, api_key=api_key())
    else:
        answers = answers_for(heldout, judge, output_dir, _model_loader(job, config), generate=config.generate)
    report = judge_and_report(
        answers,
        heldout,
        judge,
        folder,
        job_id=job.id,
        teacher_model=teacher_model_of(config),
        yes=yes,
        confirm=confirm,
        client=client,
    )
    if report.error:
        raise EvaluationError(f"evaluation stopped: {report.error} (report so far: {folder / 'evaluation.json'})")
    return report


def _with_judge(config: TrainConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    data = config.to_dict()
    data["judge"] = {**data["judge"], **overrides, "enabled": True}
    return data


def _model_loader(job: Job, config: TrainConfig) -> Callable[[], tuple[Any, Any]] | None:
    if getattr(job, "model", None) is not None:
        return lambda: (job.model, job.tokenizer)
    adapter = job.adapter_path
    if adapter is None or not Path(adapter).is_dir():
        return None
    plan_file = job.folder.path / "plan.json"
    placement = json.loads(plan_file.read_text()).get("placement") if plan_file.is_file() else job.placement
    from unsloth_nb.backends.registry import get_backend

    if placement is not None and not get_backend(placement).in_process:

        def refuse() -> tuple[Any, Any]:
            raise EvaluationError(
                f"job {job.id} trained on {placement}: its plan says the model does not fit on this machine, and the "
                "answers artifact (evaluation/answers.jsonl, generated on the pod) is missing"
            )

        return refuse

    def load() -> tuple[Any, Any]:
        from unsloth_nb.engine.save import load_for_inference

        return load_for_inference(
            Path(adapter), max_seq_length=config.train.max_seq_length, load_in_4bit=config.model.load_in_4bit
        )

    return load


__all__ = ["evaluate_job"]
