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
from typing import TYPE_CHECKING, Any

from unsloth_nb.errors import CLI, UnslothNbError, use_wording

if TYPE_CHECKING:
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.jobrun.preflight import Prepared

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
        "import": cmd_import,
        "autoload": _cmd_autoload,
        "data": cmd_data,
        "serve": cmd_serve,
        "enhance": _lazy("unsloth_nb.teacher.cli", "cmd_enhance"),
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
        import difflib

        close = difflib.get_close_matches(args[0], list(commands), n=1, cutoff=0.6)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        print(f"unsloth-nb: unknown command {args[0]!r}{guess}\n\n{_usage(commands)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with use_wording(CLI):
            return command(args[1:])
    except UnslothNbError as exc:
        print(f"unsloth-nb: {exc.render(CLI)}", file=sys.stderr)
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
        "  runpod   RunPod pods: gpus, list, stop, terminate, cleanup, train, emulator; endpoints; volume\n"
        "  eval     judge a finished job's fine-tune against its base: unsloth-nb eval ID [--yes] [--json]\n"
        "  import   turn an Unsloth notebook or script into a config: unsloth-nb import NOTEBOOK.ipynb [-o config.yaml]\n"
        "  autoload load the notebook magics in every new kernel: unsloth-nb autoload [on|off|status]\n"
        "  data     a dataset where it lives: describe SOURCE | upload FILE s3://...|volume://... (resumable)\n"
        "  serve    serve a job's adapter on a RunPod serverless vLLM endpoint: unsloth-nb serve ID [--stop] [--yes]\n"
        "  enhance  improve and paraphrase a Q&A file with a teacher model: unsloth-nb enhance DATA [--out FILE]\n"
        "           (also: unsloth-nb data enhance)\n"
    )


def _cmd_autoload(argv: list[str]) -> int:
    from unsloth_nb.ui.autoload import cmd_autoload

    return cmd_autoload(argv)


def cmd_serve(argv: list[str]) -> int:
    from unsloth_nb.backends.runpod_serverless.serve_cli import main as serve_main

    return serve_main(argv)


# ---------------------------------------------------------------------- eval
def cmd_eval(argv: list[str]) -> int:
    """Judge a job: a summary table (or one JSON object with --json); exit 1 when the judge failed."""
    from unsloth_nb.evaluate import EvaluationError
    from unsloth_nb.jobrun.controller import load_job
    from unsloth_nb.jobrun.evaluation import evaluate_job

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
            load_job(args.job_id, reattach=False),
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


# ---------------------------------------------------------------------- import
def cmd_import(argv: list[str]) -> int:
    """Read an Unsloth notebook's cells (never running them) and write the equivalent config."""
    from pathlib import Path

    from unsloth_nb.importer import import_file

    parser = argparse.ArgumentParser(
        prog="unsloth-nb import",
        description="Turn an Unsloth notebook (.ipynb) or script (.py) into an unsloth-nb config. Its cells are parsed, "
        "never run; each knob that cannot be mapped is reported with its cell and line.",
    )
    parser.add_argument("notebook", help="the .ipynb or .py file")
    parser.add_argument("-o", "--output", metavar="CONFIG", help="write the YAML here (default: print it)")
    args = parser.parse_args(argv)
    result = import_file(args.notebook)
    text = result.to_yaml()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(result.report(), file=sys.stderr)
        dataset = "" if "dataset" in result.config else " --dataset FILE"
        print(f"Wrote {args.output}. Check it: unsloth-nb plan --config {args.output}{dataset}", file=sys.stderr)
    else:
        print(text, end="")
        print(result.report(), file=sys.stderr)
    return EXIT_OK


def _lazy(module: str, name: str) -> Callable[[list[str]], int]:
    """A command that lives in its own module, imported when it runs."""

    def command(argv: list[str]) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), name)(argv))

    return command


# ---------------------------------------------------------------------- train
def cmd_train(argv: list[str], *, force_runpod: bool = False) -> int:
    from unsloth_nb.flags import read_train_args
    from unsloth_nb.jobrun.controller import launch
    from unsloth_nb.planning.plan_text import format_plan

    if force_runpod:
        argv = [*argv, "--placement", "runpod"]
    config, options, mistakes = read_train_args(argv)
    if options.dry_run:  # the plan and every request a job would send; nothing is rented, no key is needed
        from unsloth_nb.backends.runpod.dry_run import format_dry_run
        from unsloth_nb.jobrun.preflight import prepare

        prepared = prepare(config, check_secrets=False, earlier=mistakes)
        print(format_plan(prepared.plan))
        print()
        print(format_dry_run(prepared))
        return EXIT_OK
    quiet = options.quiet or options.json
    if options.imported is not None and not quiet:
        print(options.imported.report(), file=sys.stderr)
    job = launch(  # missing keys are asked for after on_plan has shown the plan (and its price)
        config,
        confirm=None if options.yes else _ask_in_terminal,
        say=(lambda _line: None) if quiet else (lambda line: print(line, file=sys.stderr)),
        on_plan=None if quiet else (lambda prepared: print(format_plan(prepared.plan), file=sys.stderr)),
        prompt_for_secrets=sys.stdin.isatty(),
        earlier=mistakes,
        judge_yes=bool(options.yes),
    )
    assert job is not None  # _ask_in_terminal raises rather than decline
    shown = [] if quiet or job.plan is None else list(job.plan.warnings) + list(job.plan.reasons)
    return follow_job(job, json_lines=options.json, quiet=options.quiet, already_said=shown)


def _ask_in_terminal(prepared: Prepared, question: str) -> bool:
    """Ask before renting (a [y/N] prompt); without a terminal, refuse and say how to confirm (--yes)."""
    from unsloth_nb.errors import PlanError
    from unsloth_nb.planning.rental import asking_because, rental_cost

    plan, config = prepared.plan, prepared.config
    if not sys.stdin.isatty():
        hint = " (or raise --confirm-above, runpod.confirm_above_usd)" if rental_cost(plan, config) is not None else ""
        raise PlanError(
            f"this job rents a RunPod GPU: {asking_because(plan, config)}. "
            f"Pass --yes to confirm when not running interactively{hint}"
        )
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise PlanError("not started: the rental was not confirmed")
    return True


def follow_job(job: Job, *, json_lines: bool = False, quiet: bool = False, already_said: list[str] | None = None) -> int:
    """Show the job until it ends (see :func:`follow_in_terminal`); returns the exit code its end means."""
    from unsloth_nb.ui.console import follow_in_terminal

    follow_in_terminal(job, json_lines=json_lines, quiet=quiet, already_said=already_said)
    if job.state == "succeeded":
        return EXIT_OK
    if job.state == "cancelled":
        return EXIT_CANCELLED
    return EXIT_BAD_INPUT if job.record.error_type in _BAD_INPUT_ERRORS else EXIT_FAILED


_BAD_INPUT_ERRORS = {"ConfigError", "DatasetError", "MissingSecretError", "PlanError", "FlagError", "InputErrors"}


# ---------------------------------------------------------------------- plan
def cmd_plan(argv: list[str]) -> int:
    from unsloth_nb.flags import read_train_args
    from unsloth_nb.jobrun.preflight import prepare
    from unsloth_nb.planning.plan_text import format_plan

    show_calibration = "--calibration" in argv
    argv = [a for a in argv if a != "--calibration"]
    if show_calibration and not any(a == "--model" or a.startswith(("--model=", "--config")) for a in argv):
        print(calibration_report())
        return EXIT_OK
    config, options, mistakes = read_train_args(argv)
    if options.imported is not None and not options.json:
        print(options.imported.report(), file=sys.stderr)
    prepared = prepare(config, check_secrets=False, earlier=mistakes)
    if options.json:
        print(json.dumps(prepared.plan.to_dict(), indent=2))
    else:
        print(format_plan(prepared.plan))
        if show_calibration:
            print(calibration_report())
    return EXIT_OK


def calibration_report() -> str:
    """``unsloth-nb plan --calibration``: what the last local jobs measured, and how far their plans were off."""
    from unsloth_nb.planning.calibration import observations
    from unsloth_nb.ui.console import format_seconds

    seen = observations()
    if not seen:
        return "Calibration: no finished local job yet; plans use the rules of thumb (planning/planner.py)."
    header = ("job", "model", "machine", "steps", "s/step", "estimated", "real", "error")
    rows = [header]
    for o in seen[:10]:
        estimated = format_seconds(o.estimated_seconds) if o.estimated_seconds else "-"
        error = f"{(o.estimated_seconds - o.elapsed_seconds) / o.elapsed_seconds:+.0%}" if o.estimated_seconds else "-"
        rows.append(
            (o.job_id, o.model, o.key, str(o.steps), f"{o.step_seconds:.2f}", estimated, format_seconds(o.elapsed_seconds), error)
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = ["Calibration: the newest finished local jobs (plans on the same machine are corrected by the nearest in size)"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------- jobs
def cmd_jobs(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="unsloth-nb jobs", description="Jobs recorded on this machine.")
    parser.add_argument("action", nargs="?", default="list", choices=("list", "show"))
    parser.add_argument("job_id", nargs="?")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--events", action="store_true", help="with show: print every event")
    args = parser.parse_args(argv)
    from unsloth_nb.jobrun.store import list_jobs

    if args.action == "list":
        records = list_jobs()
        if args.json:
            print(json.dumps([{**r.__dict__, "owner_gone": r.owner_gone} for r in records], indent=2, default=str))
            return EXIT_OK
        if not records:
            print("no jobs yet")
            return EXIT_OK
        models = [_home_short(r.model) for r in records]
        states = [r.state_label() for r in records]
        width = max(len("model"), *(len(m) for m in models))
        state_width = max(10, *(len(s) for s in states))
        print(f"{'job':22} {'state':{state_width}} {'where':7} {'model':{width}} dataset")
        for r, state, model in zip(records, states, models, strict=True):
            print(f"{r.id:22} {state:{state_width}} {r.placement:7} {model:{width}} {_home_short(r.dataset)}")
        if any(r.owner_gone for r in records):
            print(
                "owner gone: the process that ran the job ended before it did; "
                "unsloth_nb.load_job(JOB_ID) picks it up (a RunPod job's pod: unsloth-nb runpod list / cleanup)"
            )
        return EXIT_OK
    if not args.job_id:
        parser.error("show needs a job id (see unsloth-nb jobs list)")
    from unsloth_nb.jobrun.controller import load_job
    from unsloth_nb.ui.console import JobStatus

    job = load_job(args.job_id, reattach=False)  # only looking: a short-lived reattach would end the pod
    events = job.events()
    if args.json:
        print(json.dumps({"job": job.record.__dict__, "events": len(events)}, indent=2, default=str))
    else:
        status = JobStatus()
        for event in events:
            status.update(event)
        print(
            f"job {job.id}: {job.record.state_label()} ({job.placement}), "
            f"model {job.config.model.name}, dataset {job.config.dataset.path}"
        )
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


def _home_short(path: str) -> str:
    """A path under the home folder as ``~/...``: shorter, and still a path that works when pasted."""
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home) :]
    return path


# ---------------------------------------------------------------------- demo
def cmd_demo(argv: list[str]) -> int:
    from unsloth_nb.demo import run_demo_cli

    return run_demo_cli(argv)


# ---------------------------------------------------------------------- runpod
def cmd_data(argv: list[str]) -> int:
    """``unsloth-nb data describe|upload|enhance``: see unsloth_nb/data/cli.py."""
    from unsloth_nb.data.cli import main as data_main

    return data_main(argv)


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
        from unsloth_nb.jobrun.job import live_jobs

        if not live_jobs():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
