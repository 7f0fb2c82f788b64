"""``unsloth_nb.teacher(data, out=...)``: the teacher on a dataset file, outside a training job.

The same code as the job's ``enhance`` phase: rows read and validated like a training file, an optional held-out
split first (written beside the output as ``<out>.heldout.jsonl``, usable as ``judge.eval_path``; paraphrases of
those questions never reach the output), the estimate asked about above ``teacher.confirm_above_usd``, then the
enhanced file, with provenance, card and progress in ``<out stem>.teacher/``. The input file is never written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unsloth_nb.teacher.run import EnhanceOutcome, TeacherError, enhance_rows, make_client

MAX_SEQ_FOR_READING = 1_000_000  # reading only: the training job applies its own length rule


def default_out(data: str | Path) -> Path:
    path = Path(data)
    return path.with_name(f"{path.stem}.enhanced.jsonl")


def side_folder(out: Path) -> Path:
    return out.with_name(f"{out.stem}.teacher")


def teacher_from(fields: dict[str, Any], data: str | Path) -> Any:
    """A validated TeacherConfig from keyword fields (every mistake at once, named ``teacher.<field>``)."""
    from unsloth_nb.config import TrainConfig

    return TrainConfig.from_dict({"model": "standalone", "dataset": str(data), "teacher": {**fields, "enabled": True}}).teacher


def enhance(
    data: str | Path,
    out: str | Path | None = None,
    *,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    emit: Callable[..., Any] | None = None,
    stop: Callable[[], bool] | None = None,
    api_key: str | None = None,
    **teacher_fields: Any,
) -> EnhanceOutcome:
    """Enhance ``data`` into ``out`` (default ``<data stem>.enhanced.jsonl`` beside it). ``teacher_fields`` are
    ``teacher:`` fields (model, operations, paraphrases, holdout, max_cost_usd, batch, ...). Raises TeacherError
    when the cap is reached (the rows done are written and cached: run again with a higher cap to finish)."""
    from unsloth_nb.config import DatasetConfig
    from unsloth_nb.data import prepare_dataset
    from unsloth_nb.evaluate.holdout import split_holdout
    from unsloth_nb.teacher.estimate import confirm_or_raise, estimate

    out_path = Path(out).expanduser() if out is not None else default_out(data)
    if out_path.resolve() == Path(data).expanduser().resolve():
        raise TeacherError(f"--out {out_path} is the input file; the teacher never overwrites your data: name another file")
    teacher = teacher_from({**teacher_fields, "out": str(out_path)}, data)
    dataset = prepare_dataset(DatasetConfig(path=str(data)), MAX_SEQ_FOR_READING)
    rows, origins = dataset.train, dataset.origins
    questions: list[str] = []
    if teacher.holdout > 0:
        rows, origins, heldout = split_holdout(rows, origins, teacher.holdout, 3407)
        questions = [item.question for item in heldout.items]
        _write_heldout(out_path.with_name(f"{out_path.stem}.heldout.jsonl"), heldout)
    found = estimate(teacher, rows, origins, api_key=api_key)
    say = emit or (lambda kind, **data: None)
    say("log", level="info", source="teacher", message=found.line(teacher))
    confirm_or_raise(teacher, found, yes=yes, confirm=confirm)
    client = make_client(teacher, stop, api_key=api_key)
    outcome = enhance_rows(
        rows,
        origins,
        teacher,
        side_folder(out_path),
        heldout_questions=questions,
        client=client,
        emit=say,
        stop=stop or (lambda: False),
    )
    if outcome.status == "budget":
        raise TeacherError(outcome.message)
    if outcome.status == "complete":
        prepare_dataset(DatasetConfig(path=str(out_path)), MAX_SEQ_FOR_READING)  # passes what a user's file must
    return outcome


def _write_heldout(path: Path, heldout: Any) -> None:
    """Held-out rows as a dataset file (question and reference answer), for ``judge.eval_path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for item in heldout.items:
            turns = [*item.messages, *([{"role": "assistant", "content": item.reference}] if item.reference else [])]
            handle.write(json.dumps({"messages": turns}, ensure_ascii=False) + "\n")


__all__ = ["default_out", "enhance", "side_folder"]
