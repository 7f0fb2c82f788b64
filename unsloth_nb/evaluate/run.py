"""Evaluation as a whole: held-out questions -> both models' answers -> the judge -> the report in the job folder.

Three ways in, one path: the job's last phases (``judge:`` in the config; :mod:`unsloth_nb.phases.evaluation`),
``job.evaluate()`` and ``unsloth-nb eval <job-id>`` (:func:`evaluate_job`). What was done before is reused: the
held-out set recorded at the start, the answers file when it was made for the same questions and cap, and the
judge's cache, so a re-run makes no API call for what was judged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.errors import UnslothNbError
from unsloth_nb.evaluate.answers import AnswerSet, answer_both
from unsloth_nb.evaluate.holdout import HeldOut, heldout_from_rows
from unsloth_nb.evaluate.judging import judge_answers
from unsloth_nb.evaluate.report import EvaluationReport

if TYPE_CHECKING:
    from unsloth_nb.config import GenerateConfig, JudgeConfig, TrainConfig
    from unsloth_nb.data import PreparedDataset
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.llm import LLMClient


class EvaluationError(UnslothNbError):
    """The evaluation could not finish (judge down, no held-out questions, model unavailable); the adapter is untouched."""


Emit = Callable[..., Any]


def _no_emit(kind: str, /, **data: Any) -> None:
    return None


# ---------------------------------------------------------------------------- held-out questions
def heldout_for(config: TrainConfig, folder: Path, base_dir: Path | None, training: PreparedDataset | None = None) -> HeldOut:
    """The recorded held-out set, else the eval file (judge.eval_path, else dataset.eval_path) read now."""
    recorded = HeldOut.load(folder)
    if recorded is not None and not config.judge.eval_path:
        return recorded
    path = config.judge.eval_path or config.dataset.eval_path
    if not path:
        raise EvaluationError(
            "this job has no held-out questions: it was trained without a judge: section (so nothing was held out) "
            "and names no eval file; pass eval_path= (a file of questions it never trained on) or set judge.eval_path"
        )
    return read_eval_file(config, path, base_dir, training)


def read_eval_file(config: TrainConfig, path: str, base_dir: Path | None, training: PreparedDataset | None) -> HeldOut:
    from unsloth_nb.config import DatasetConfig
    from unsloth_nb.data import prepare_dataset

    where = str(base_dir) if base_dir else None
    evaluation = prepare_dataset(DatasetConfig(path=path, skip_invalid=True), config.train.max_seq_length, base_dir=where)
    rows, origins = evaluation.train + (evaluation.eval or []), evaluation.origins + evaluation.eval_origins
    if training is None:
        try:
            training = prepare_dataset(config.dataset, config.train.max_seq_length, base_dir=where)
        except UnslothNbError:
            training = None
    training_rows = (training.train + (training.eval or [])) if training is not None else []
    return heldout_from_rows(rows, origins, training_rows, f"eval file {path}")


def split_for_judge(config: TrainConfig, dataset: PreparedDataset) -> tuple[PreparedDataset, HeldOut | None]:
    """Before training: without an eval file, take ``judge.holdout`` rows out of the training rows."""
    from unsloth_nb.evaluate.holdout import split_holdout

    judge = config.judge
    if not judge.enabled or judge.eval_path or config.dataset.eval_path:
        return dataset, None
    train, origins, heldout = split_holdout(dataset.train, dataset.origins, judge.holdout, config.train.seed)
    if not heldout.items and not heldout.dropped_near_duplicates:
        return dataset, heldout
    summary = dataclasses.replace(dataset.summary, rows=len(train))
    return dataclasses.replace(dataset, train=train, origins=origins, summary=summary), heldout


def prepare_heldout(config: TrainConfig, dataset: PreparedDataset, base_dir: Path) -> tuple[PreparedDataset, HeldOut]:
    """At preflight: the held-out set (the eval file, or the split) and the training rows left to train on."""
    from unsloth_nb.evaluate.protocol import load_rubric

    load_rubric(config.judge.rubric)  # a broken rubric is a mistake to report now, not after training
    path = config.judge.eval_path or config.dataset.eval_path
    if path:
        return dataset, read_eval_file(config, path, base_dir, dataset)
    dataset, heldout = split_for_judge(config, dataset)
    if heldout is None or not heldout.items:
        raise EvaluationError(
            "judge: no held-out questions: set judge.holdout (a fraction or a count of rows) or judge.eval_path; "
            + (f"{heldout.dropped_near_duplicates} held-out rows were near-duplicates of training prompts" if heldout else "")
        )
    return dataset, heldout


def limit_questions(heldout: HeldOut, judge: JudgeConfig) -> HeldOut:
    if judge.max_questions is None or len(heldout.items) <= judge.max_questions:
        return heldout
    return dataclasses.replace(heldout, items=heldout.items[: judge.max_questions])


# ---------------------------------------------------------------------------- answers
def answers_for(
    heldout: HeldOut,
    judge: JudgeConfig,
    output_dir: Path,
    load_model: Callable[[], tuple[Any, Any]] | None,
    emit: Emit = _no_emit,
    should_stop: Callable[[], bool] = lambda: False,
    generate: GenerateConfig | None = None,
) -> AnswerSet:
    """The answers file when it fits these questions and cap; else generate (needs the model) and save.

    Greedy unless ``judge.decoding`` is ``generate`` (then the ``generate:`` section samples them).
    """
    from unsloth_nb.engine.generation import judge_settings, thinking_note

    existing = AnswerSet.load(output_dir)
    if existing is not None and existing.matches(heldout.items, judge.max_new_tokens):
        return existing
    if load_model is None:
        raise EvaluationError("no answers were generated for this job and its model is not available here")
    model, tokenizer = load_model()
    settings = judge_settings(judge.decoding, judge.max_new_tokens, generate)
    note = thinking_note(tokenizer, settings)
    if note:  # said once in the job's log rather than silently dropped
        emit("log", level="info", message=note, source="evaluation")
    answers = answer_both(
        model,
        tokenizer,
        heldout.items,
        settings=settings,
        batch_size=judge.batch_size,
        should_stop=should_stop,
        progress=lambda done, total: emit("evaluation", stage="answers", done=done, total=total),
    )
    answers.save(output_dir)
    return answers


# ---------------------------------------------------------------------------- judging + report
def judge_and_report(
    answers: AnswerSet,
    heldout: HeldOut,
    judge: JudgeConfig,
    folder: Path,
    *,
    job_id: str | None,
    teacher_model: str | None = None,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    client: LLMClient | None = None,
    emit: Emit = _no_emit,
    stop: Callable[[], bool] | None = None,
) -> EvaluationReport:
    def progress(done: int, total: int, usd: float) -> None:
        emit("evaluation", stage="judging", done=done, total=total, cost_usd=round(usd, 6))

    report = judge_answers(
        answers,
        judge,
        client=client,
        job_id=job_id,
        heldout_source=heldout.source,
        dropped_near_duplicates=heldout.dropped_near_duplicates,
        teacher_model=teacher_model,
        yes=yes,
        confirm=confirm,
        on_progress=progress,
        stop=stop,
    )
    report.save(folder)
    ci = report.ci95
    emit(
        "evaluation",
        stage="done",
        questions=len(report.rows),
        wins=report.wins,
        ties=report.ties,
        losses=report.losses,
        no_verdict=report.no_verdict,
        not_judged=report.not_judged,
        win_rate=report.win_rate,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        consistency=report.consistency,
        cost_usd=round(report.cost_usd, 6),
        judge=f"{judge.provider}:{judge.model}",
        error=report.error,
        report=str(Path(folder) / "evaluation.json"),
    )
    emit("cost", source="judge", usd_so_far=round(report.cost_usd, 6))
    for warning in report.warnings:
        emit("log", level="warning", message=warning, source="judge")
    return report


def teacher_model_of(config: TrainConfig) -> str | None:
    teacher = getattr(config, "teacher", None)
    return getattr(teacher, "model", None) if teacher is not None and getattr(teacher, "enabled", True) else None


# ---------------------------------------------------------------------------- entry: a finished job
def evaluate_job(
    job: Job | str,
    *,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    eval_path: str | None = None,
    client: LLMClient | None = None,
    prompt_for_key: bool = False,
    **judge_overrides: Any,
) -> EvaluationReport:
    """Evaluate a job (a :class:`~unsloth_nb.jobrun.job.Job` or its id) against its base model.

    ``judge_overrides`` replace ``judge.*`` fields (``model="claude-haiku-4-5", provider="anthropic"``). While
    ``job.serve()`` runs an endpoint for the job, both models' answers come from it; else the
    model comes from the job when it lives in this kernel, else the adapter is loaded here when the job's plan
    placed it here; a RunPod job's answers come from its pod (the answers artifact). Raises EvaluationError when
    the judge fails; the rows judged so far are in the report file either way.
    """
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.jobrun.controller import load_job

    if isinstance(job, str):
        job = load_job(job, reattach=False)
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
        from unsloth_nb.evaluate.served import answers_from_endpoint

        answers = answers_from_endpoint(served, heldout, judge, output_dir, generate=config.generate)
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


__all__ = [
    "EvaluationError",
    "answers_for",
    "evaluate_job",
    "heldout_for",
    "judge_and_report",
    "limit_questions",
    "prepare_heldout",
    "read_eval_file",
    "split_for_judge",
]
