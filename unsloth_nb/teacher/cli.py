"""``unsloth-nb enhance DATA [--out FILE]``: the teacher from a terminal (``--json`` prints one object at the end).

Every ``teacher:`` field is a flag (``--teacher-model``, ``--teacher-ops improve,paraphrase``, ``--teacher-max-cost``
...). ``--fake`` runs against the offline fake teacher (scripted answers, no key, no cost) and says so.
Exit codes: 0 done, 1 the teacher failed or its cap was reached (rows done are kept), 2 bad input, 130 stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from unsloth_nb.errors import UnslothNbError


def enhance_parser(prog: str = "unsloth-nb enhance", *, short_out: bool = True) -> argparse.ArgumentParser:
    """The flags of ``unsloth-nb enhance`` (also read by ``%unsloth_enhance`` and ``unsloth-nb data enhance``).
    ``short_out=False`` leaves ``-o`` free: in a magic it names the variable, as in ``%unsloth_train -o job``."""
    from unsloth_nb.config import TrainConfig, field_specs

    parser = argparse.ArgumentParser(prog=prog, description="Improve and paraphrase a Q&A dataset with a teacher model.")
    parser.add_argument("data", help="the dataset file to enhance (never modified)")
    parser.add_argument(
        "--out", *(["-o"] if short_out else []), help="where to write the enhanced rows (default: DATA's stem + .enhanced.jsonl)"
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask about the estimated cost")
    parser.add_argument("--json", action="store_true", help="print the dataset card and paths as one JSON object")
    parser.add_argument("--review", type=int, default=0, metavar="N", help="print N before/after rows side by side at the end")
    parser.add_argument("--fake", action="store_true", help="use the offline fake teacher (scripted answers; no key, no cost)")
    for spec in field_specs(TrainConfig):
        if spec.path.startswith("teacher.") and spec.flag and spec.path not in ("teacher.enabled", "teacher.out"):
            parser.add_argument(spec.flag, dest="t__" + spec.path.split(".", 1)[1], default=None, help=spec.help)
    return parser


def teacher_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``teacher:`` fields the flags gave (those left out keep their defaults)."""
    return {k[3:]: v for k, v in vars(args).items() if k.startswith("t__") and v is not None}


def cmd_enhance(argv: list[str], prog: str = "unsloth-nb enhance") -> int:
    from unsloth_nb.teacher.run import TeacherError
    from unsloth_nb.teacher.standalone import enhance, side_folder

    args = enhance_parser(prog).parse_args(argv)
    fields = teacher_fields(args)
    interactive = sys.stdin.isatty() and not args.json

    def confirm(question: str) -> bool:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    def emit(kind: str, **data: Any) -> None:
        if kind == "log" and not args.json:
            print(data.get("message", ""), file=sys.stderr)

    fake = None
    if args.fake:
        from unsloth_nb.teacher.offline import offline_teacher

        settings, fake = offline_teacher()
        fields.update(settings)
        print("unsloth-nb: using the offline fake teacher: answers are scripted, nothing is sent anywhere, $0", file=sys.stderr)
    try:
        outcome = enhance(args.data, args.out, yes=args.yes, confirm=confirm if interactive else None, emit=emit, **fields)
    except TeacherError as exc:
        print(f"unsloth-nb: {exc}", file=sys.stderr)
        return 1
    except UnslothNbError:
        raise
    finally:
        if fake is not None:
            fake.stop()
    assert outcome.path is not None
    if args.json:
        print(
            json.dumps(
                {"out": str(outcome.path), "side": str(side_folder(outcome.path)), "status": outcome.status, "card": outcome.card}
            )
        )
    else:
        print(outcome.summary_line())
        print(f"wrote {outcome.path} (provenance and card in {side_folder(outcome.path)})")
        if outcome.message:
            print(outcome.message)
        if args.review:
            print(outcome.review(args.review))
    return 0 if outcome.status == "complete" else 130


__all__ = ["cmd_enhance", "enhance_parser", "teacher_fields"]
