"""`unsloth-nb`: train, plan, jobs, demo and runpod from a terminal.

Exit codes: 0 succeeded, 1 failed, 2 bad input (nothing was started), 130 cancelled.
User mistakes print one message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from unsloth_nb.errors import UnslothNbError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands: dict[str, Callable[[list[str]], int]] = {
        "train": cmd_train,
        "plan": cmd_plan,
        "jobs": cmd_jobs,
        "demo": cmd_demo,
        "runpod": cmd_runpod,
        "eval": cmd_eval,
    }
    if not args or args[0] in ("-h", "--help"):
        print(_usage(commands))
        return EXIT_OK if args else EXIT_BAD_INPUT
    if args[0] == "--version":
        from unsloth_nb import __version__

        print(__version__)
        return EXIT_OK
    command = commands.get(args[0])
    if command is None:
        print(f"unsloth-nb: unknown command {args[0]!r}\n\n{_usage(commands)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return command(args[1:])
    except UnslothNbError as exc:
        print(f"unsloth-nb: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("unsloth-nb: interrupted", file=sys.stderr)
        return EXIT_CANCELLED


def _usage(commands: dict[str, Any]) -> str:
    return (
        "usage: unsloth-nb <command> [flags]\n\n"
        "commands:\n"
        "  train    fine-tune a model (every config field is a flag; see unsloth-nb train --help)\n"
        "  plan     show where a job would run, the memory it needs and what it would cost\n"
        "  jobs     list jobs, or show one: unsloth-nb jobs [list|show ID]\n"
        "  demo     fine-tune SmolLM2-135M on Super Bowl LIX Q&A on this CPU, offline (~3 min)\n"
        "  runpod   RunPod pods: gpus, list, stop, terminate, cleanup, train, emulator\n"
        "  eval     judge a finished job's fine-tune against its base: unsloth-nb eval ID [--yes] [--json]\n"
    )


# ---------------------------------------------------------------------- eval
def cmd_eval(argv: list[str]) -> int:
    """Judge a job: a summary table (or one JSON object with --json); exit 1 when the judge failed."""
    from unsloth_nb.evaluate import EvaluationError, evaluate_job

    parser = argparse.ArgumentParser(prog="unsloth-nb eval", description="Judge a finished job's fine-tune against its base.")
    parser.add_argument("job_id")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask about the judge's estimated cost")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--judge-provider", choices=("openai", "openai-compatible", "anthropic"))
    parser.add_argument("--judge-model")
    parser.add_argument("--judge-base-url")
    parser.add_argument("--judge-max-cost", type=float)
    parser.add_argument("--eval-dataset", help="a file of held-out questions (default: the job's recorded held-out set)")
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in (
            ("provider", args.judge_provider),
            ("model", args.judge_model),
            ("base_url", args.judge_base_url),
            ("max_cost_usd", args.judge_max_cost),
        )
        if value is not None
    }
    interactive = sys.stdin.isatty() and not args.json

    def confirm(question: str) -> bool:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    try:
        report = evaluate_job(
            args.job_id,
            yes=args.yes,
            confirm=confirm if interactive else None,
            eval_path=args.eval_dataset,
            prompt_for_key=interactive,
            **overrides,
        )
    except EvaluationError as exc:
        print(f"unsloth-nb: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return EXIT_OK
    print(_eval_table(report))
    return EXIT_OK


def _eval_table(report: Any) -> str:
    summary = report.summary()
    rate, ci, cons = summary["win_rate"], summary["ci95"], summary["consistency"]
    rows = [
        ("wins / ties / losses", f"{summary['wins']} / {summary['ties']} / {summary['losses']}"),
        ("win rate (95% CI)", "-" if rate is None else f"{rate:.0%}" + (f" ({ci[0]:.0%}-{ci[1]:.0%})" if ci else "")),
        ("position-consistent", "-" if cons is None else f"{cons:.0%}"),
        ("no verdict / not judged", f"{summary['no_verdict']} / {summary['not_judged']}"),
        ("judge", summary["judge"]),
        ("cost", f"${summary['cost_usd']:.4f}" + ("" if summary["cost_known"] else " + unpriced usage")),
        ("requests (from cache)", f"{summary['requests_sent']} ({summary['cache_hits']})"),
        ("wall time", f"{summary['wall_seconds']:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


# ---------------------------------------------------------------------- train
def cmd_train(argv: list[str], *, force_runpod: bool = False) -> int:
    from unsloth_nb.flags import parse_train_args
    from unsloth_nb.jobs.controller import Job, prepare
    from unsloth_nb.planning.plan_text import format_plan

    if force_runpod:
        argv = [*argv, "--placement", "runpod"]
    config, options = parse_train_args(argv)
    prepared = prepare(config, prompt_for_secrets=sys.stdin.isatty())
    if not options.json and not options.quiet:
        print(format_plan(prepared.plan), file=sys.stderr)
    if not options.yes:
        _confirm_rental(prepared, quiet=options.quiet or options.json)
    prepared.judge_yes = bool(options.yes)
    job = Job.start(prepared)
    return follow_job(job, json_lines=options.json, quiet=options.quiet)


def _confirm_rental(prepared: Any, *, quiet: bool = False) -> None:
    """Ask before renting when runpod.confirm_above_usd says so; otherwise say (on stderr) that it rents without asking."""
    from unsloth_nb.errors import PlanError
    from unsloth_nb.planning.rental import asking_because, rental_cost, rental_note, rental_question

    plan, config = prepared.plan, prepared.config
    question = rental_question(plan, config)
    if question is None:
        note = rental_note(plan, config)
        if note and not quiet:
            print(note, file=sys.stderr)
        return
    if not sys.stdin.isatty():
        hint = " (or raise --confirm-above, runpod.confirm_above_usd)" if rental_cost(plan, config) is not None else ""
        raise PlanError(
            f"this job rents a RunPod GPU: {asking_because(plan, config)}. "
            f"Pass --yes to confirm when not running interactively{hint}"
        )
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise PlanError("not started: the rental was not confirmed")


def follow_job(job: Any, *, json_lines: bool = False, quiet: bool = False) -> int:
    """Show the job until it ends (see :func:`follow_in_terminal`); returns the exit code its end means."""
    from unsloth_nb.ui.console import follow_in_terminal

    follow_in_terminal(job, json_lines=json_lines, quiet=quiet)
    if job.state == "succeeded":
        return EXIT_OK
    if job.state == "cancelled":
        return EXIT_CANCELLED
    return EXIT_BAD_INPUT if job.record.error_type in _BAD_INPUT_ERRORS else EXIT_FAILED


_BAD_INPUT_ERRORS = {"ConfigError", "DatasetError", "MissingSecretError", "PlanError", "FlagError"}


# ---------------------------------------------------------------------- plan
def cmd_plan(argv: list[str]) -> int:
    from unsloth_nb.flags import parse_train_args
    from unsloth_nb.jobs.controller import prepare
    from unsloth_nb.planning.plan_text import format_plan

    config, options = parse_train_args(argv)
    prepared = prepare(config, check_secrets=False)
    if options.json:
        print(json.dumps(prepared.plan.to_dict(), indent=2))
    else:
        print(format_plan(prepared.plan))
    return EXIT_OK


# ---------------------------------------------------------------------- jobs
def cmd_jobs(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="unsloth-nb jobs", description="Jobs recorded on this machine.")
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show"))
    parser.add_argument("job_id", nargs="?")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--events", action="store_true", help="with show: print every event")
    args = parser.parse_args(argv)
    from unsloth_nb.jobs.store import list_jobs

    if args.action == "list":
        records = list_jobs()
        if args.json:
            print(json.dumps([r.__dict__ for r in records], indent=2, default=str))
            return EXIT_OK
        if not records:
            print("no jobs yet")
            return EXIT_OK
        print(f"{'job':22} {'state':10} {'where':7} {'model':40} dataset")
        for r in records:
            print(f"{r.id:22} {r.state:10} {r.placement:7} {r.model[-40:]:40} {r.dataset}")
        return EXIT_OK
    if not args.job_id:
        parser.error("show needs a job id (see unsloth-nb jobs list)")
    from unsloth_nb.jobs.controller import Job
    from unsloth_nb.ui.console import JobStatus

    job = Job.load(args.job_id, reattach=False)  # only looking: a short-lived reattach would end the pod
    events = job.events()
    if args.json:
        print(json.dumps({"job": job.record.__dict__, "events": len(events)}, indent=2, default=str))
    else:
        status = JobStatus()
        for event in events:
            status.update(event)
        print(f"job {job.id}: {job.state} ({job.placement}), model {job.config.model.name}, dataset {job.config.dataset.path}")
        print(f"  {status.line()}")
        for name, path in job.record.artifacts.items():
            print(f"  {name}: {path}")
        if job.error:
            print(f"  error: {job.error}")
        print(f"  folder: {job.folder.path}")
    if args.events:
        for event in events:
            print(event.to_json())
    return EXIT_OK


# ---------------------------------------------------------------------- demo
def cmd_demo(argv: list[str]) -> int:
    from unsloth_nb.demo import run_demo_cli

    return run_demo_cli(argv)


# ---------------------------------------------------------------------- runpod
def cmd_runpod(argv: list[str]) -> int:
    if argv and argv[0] == "train":
        return cmd_train(argv[1:], force_runpod=True)
    if argv and argv[0] == "emulator":
        from unsloth_nb.testing.runpod_emulator import main as emulator_main

        return emulator_main(argv[1:])
    try:
        from unsloth_nb.backends.runpod.cli import main as runpod_main
    except ImportError:
        print("unsloth-nb runpod: the RunPod backend is not installed (pip install 'unsloth-nb[runpod]')", file=sys.stderr)
        return EXIT_FAILED
    return runpod_main(argv)


def run() -> None:
    """The console script: ``main``, then a quick exit once training libraries were loaded.

    Interpreter shutdown after torch and Triton have loaded is slow and prints screens of
    binding "leak" warnings from Triton's extension; a finished command has nothing left to
    clean up (no live job: jobs stop their pods in their own ``finally``), so it leaves at once.
    """
    code = main()
    if "torch" in sys.modules:
        from unsloth_nb.jobs.controller import live_jobs

        if not live_jobs():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
