"""``%unsloth_enhance`` and ``%%unsloth_enhance``: ``unsloth-nb enhance`` in a notebook cell.

The line takes the same flags as the command (parsed by the same parser: every ``teacher:`` field is a flag),
plus ``-o NAME`` to keep the outcome (its rows, card, ``.review()``) in the namespace. A cell body is YAML of
``teacher:`` fields (bare, or under a ``teacher:`` key) that the line's flags override. The estimate is shown
first; above ``teacher.confirm_above_usd`` nothing is sent until the cell is re-run with ``--yes`` (a cell
cannot answer a terminal prompt). ``--review N`` shows the before/after table under the cell. Mistakes are
one-line ``UsageError``s, never tracebacks; the input file is never written.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from unsloth_nb.errors import MAGIC, UnslothNbError

_DOC = """Enhance a Q&A dataset with a teacher model (the flags of `unsloth-nb enhance`).

    %unsloth_enhance qa.jsonl --teacher-ops improve,paraphrase --teacher-max-cost 2 --review 5 -o enhanced

    %%unsloth_enhance qa.jsonl --yes -o enhanced
    operations: [improve, paraphrase]
    paraphrases: 2
    max_cost_usd: 2

--fake uses the offline scripted teacher (no key, $0). The enhanced file is written beside DATA
(DATA's stem + .enhanced.jsonl) or to --out; provenance and the dataset card go to <out stem>.teacher/.
Train on it with %unsloth_train --dataset <that file>, or give a job a `teacher:` section instead.

"""


def _cell_fields(cell: str | None) -> dict[str, Any]:
    """``teacher:`` fields from a cell body (YAML mapping, bare or under ``teacher:``)."""
    if cell is None or not cell.strip():
        return {}
    import yaml

    try:
        data = yaml.safe_load(cell)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (cell line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"the cell body is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if isinstance(data, dict) and set(data) == {"teacher"}:
        data = data["teacher"]
    if not isinstance(data, dict):
        raise UsageError("the cell body must be a mapping of teacher: fields, e.g. `operations: [improve, paraphrase]`")
    return {str(key): value for key, value in data.items()}


@magics_class
class EnhanceMagics(Magics):
    """``%unsloth_enhance``; registered with the other unsloth-nb magics."""

    @line_cell_magic
    def unsloth_enhance(self, line: str, cell: str | None = None) -> Any:
        from unsloth_nb.teacher.cli import enhance_parser, teacher_fields
        from unsloth_nb.teacher.run import TeacherError
        from unsloth_nb.teacher.standalone import enhance, side_folder

        parser = enhance_parser("%unsloth_enhance", short_out=False)
        parser.add_argument("-o", dest="output_name", help="keep the outcome in this variable")
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"cannot read the flags: {exc}") from None
        if "-h" in argv or "--help" in argv:
            print(_DOC + parser.format_help())
            return None
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # argparse printed what was wrong; the kernel must not exit
            raise UsageError("see %unsloth_enhance? for the flags") from None
        name = args.output_name
        if name is not None and not name.isidentifier():
            raise UsageError(f"-o {name!r}: the outcome needs a valid Python variable name, e.g. -o enhanced")
        fields = {**_cell_fields(cell), **teacher_fields(args)}
        fake = None
        if args.fake:
            from unsloth_nb.teacher.offline import offline_teacher

            settings, fake = offline_teacher()
            fields.update(settings)
            print("Using the offline fake teacher: answers are scripted, nothing is sent anywhere, $0.")

        def say(kind: str, **data: Any) -> None:
            if kind == "log" and data.get("message"):
                print(data["message"])

        try:
            outcome = enhance(args.data, args.out, yes=args.yes, confirm=None, emit=say, **fields)
        except TeacherError as exc:
            raise UsageError(f"{exc}".replace("pass --yes (yes=True)", "re-run the cell with --yes")) from None
        except UnslothNbError as exc:
            raise UsageError(exc.render(MAGIC)) from None
        finally:
            if fake is not None:
                fake.stop()
        assert outcome.path is not None
        print(outcome.summary_line())
        print(f"Wrote {outcome.path} (provenance and card in {side_folder(outcome.path)}).")
        if outcome.message:
            print(outcome.message)
        if name:
            assert self.shell is not None
            self.shell.user_ns[name] = outcome
        if args.review:
            from IPython.display import display

            display(outcome.review(args.review))
        return None


EnhanceMagics.unsloth_enhance.__doc__ = _DOC

__all__ = ["EnhanceMagics"]
