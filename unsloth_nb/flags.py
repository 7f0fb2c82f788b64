"""Command-line flags for TrainConfig, generated from its schema.

`unsloth-nb train` and `%unsloth_train` share this parser, so a flag that works
in a terminal works in a cell, and `--help` / `%unsloth_train?` list every field
with the help text written next to it in its config section.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unsloth_nb import config_aliases
from unsloth_nb.config import FieldSpec, TrainConfig, deep_update, expand_dotted, field_specs, load_config_file, parse_yaml
from unsloth_nb.errors import SEE_HELP, ConfigError, UnslothNbError, raise_all

SECTION_TITLES = {
    "model": "model",
    "dataset": "dataset",
    "lora": "LoRA adapter",
    "train": "training",
    "save": "saving",
    "hub": "Hugging Face Hub (needs HF_TOKEN in the environment)",
    "runpod": "RunPod (needs RUNPOD_API_KEY in the environment)",
    "generate": "generating answers (the demo, Try it, job.chat)",
    "": "placement",
}


class FlagError(UnslothNbError):
    """A flag could not be parsed (unknown flag, missing value)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting the kernel."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlagError(f"{message} ({SEE_HELP})")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if status:
            raise FlagError(message or "invalid flags")
        raise SystemExit(status)


@dataclass
class TrainOptions:
    """Flags that steer the run rather than describe the job."""

    yes: bool = False
    json: bool = False
    output_name: str | None = None
    config_file: str | None = None
    no_wait: bool = False
    quiet: bool = False
    dry_run: bool = False
    #: The notebook import behind ``--from FILE`` (or pasted notebook cells): what to tell the user about it.
    imported: Any = None


def _dest(spec: FieldSpec) -> str:
    return "cfg__" + spec.path.replace(".", "__")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (booleans get a --no- form), grouped by section."""
    groups: dict[str, Any] = {}
    for spec in field_specs(TrainConfig):
        if not spec.flag:
            continue
        section = spec.path.rsplit(".", 1)[0] if "." in spec.path else ""
        if section not in groups:
            groups[section] = parser.add_argument_group(SECTION_TITLES.get(section, section))
        group = groups[section]
        help_text = spec.help
        if their := config_aliases.their_names(spec.path):
            help_text += f" (Unsloth/TRL: {', '.join(their)})"
        if spec.default not in (None, "", [], {}):
            help_text += f" [default: {_show_default(spec.default)}]"
        if spec.base_type is bool:
            group.add_argument(spec.flag, dest=_dest(spec), action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            metavar = "|".join(map(str, spec.choices)) if spec.choices else spec.path.rsplit(".", 1)[-1].upper()
            group.add_argument(spec.flag, dest=_dest(spec), default=None, metavar=metavar, help=help_text)
    fixed = parser.add_argument_group(
        "Unsloth/TRL names whose value unsloth-nb fixes (accepted when they match, refused with the reason otherwise)"
    )
    for name, rule in config_aliases.FIXED.items():
        fixed.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg__{name}", default=None, metavar="VALUE", help=rule.reason)
    fixed.add_argument(
        f"--{config_aliases.TEXT_FIELD.replace('_', '-')}",
        dest=f"cfg__{config_aliases.TEXT_FIELD}",
        default=None,
        metavar="COLUMN",
        help="TRL's plain-text column: text, or another column (read as dataset.columns text=COLUMN).",
    )
    extra = groups.get("runpod") or parser
    extra.add_argument(
        "--force-runpod", dest="cfg__placement", action="store_const", const="runpod", help="Same as --placement runpod."
    )


def _show_default(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("running")
    group.add_argument("--config", "-c", dest="config_file", metavar="FILE", help="YAML or JSON config; flags override it.")
    group.add_argument(
        "--from",
        dest="from_file",
        metavar="NOTEBOOK",
        help="An Unsloth notebook (.ipynb) or script (.py) to start from: its cells are read (never run) and turned "
        "into a config; a cell body, --config and flags override it.",
    )
    group.add_argument("--yes", "-y", action="store_true", help="Start without asking, even when the plan rents a GPU.")
    group.add_argument("--json", action="store_true", help="Print one JSON event per line instead of a progress display.")
    group.add_argument(
        "-o", "--output-name", dest="output_name", metavar="NAME", help="(notebook) store the Job in this variable."
    )
    group.add_argument("--no-wait", action="store_true", help="(notebook) return at once; the job runs in the background.")
    group.add_argument("--quiet", "-q", action="store_true", help="Show only the final result.")
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="Print the plan and every request a RunPod job would send (secrets redacted); rent nothing, train nothing.",
    )


def build_train_parser(prog: str = "unsloth-nb train", description: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=description or "Fine-tune a model with LoRA/QLoRA. Every field of the config is a flag.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_config_flags(parser)
    add_run_flags(parser)
    return parser


def overrides_from_namespace(namespace: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set on the command line, as a nested dict."""
    dotted = {
        key[len("cfg__") :].replace("__", "."): value
        for key, value in vars(namespace).items()
        if key.startswith("cfg__") and value is not None
    }
    return expand_dotted(dotted)


def parse_train_args(argv: Sequence[str] | str, base: dict[str, Any] | None = None) -> tuple[TrainConfig, TrainOptions]:
    """Flags (a list, or one string as typed in a magic) -> validated config + run options.

    ``base`` is config data from elsewhere (a %%unsloth_train cell body); a --config
    file comes next and flags override both. Every mistake is raised at once.
    """
    config, options, errors = read_train_args(argv, base)
    raise_all(errors)
    return config, options


def read_train_args(
    argv: Sequence[str] | str, base: dict[str, Any] | None = None
) -> tuple[TrainConfig, TrainOptions, list[UnslothNbError]]:
    """Like :func:`parse_train_args`, but hands back the mistakes with the config they leave.

    Unknown flags and bad values do not stop the reading: each becomes an error
    (an unknown flag with the closest real one), and the config keeps the field's
    default, so the dataset and model can be checked in the same pass.
    """
    args = _attach_negative_numbers(_their_spellings(shlex.split(argv) if isinstance(argv, str) else list(argv)))
    parser = build_train_parser()
    namespace, unknown = parser.parse_known_args(args)
    errors: list[UnslothNbError] = list(_unknown_flag_errors(unknown, parser))
    options = TrainOptions(
        yes=namespace.yes,
        json=namespace.json,
        output_name=namespace.output_name,
        config_file=namespace.config_file,
        no_wait=namespace.no_wait,
        quiet=namespace.quiet,
        dry_run=namespace.dry_run,
    )
    data: dict[str, Any] = {}
    if namespace.from_file:  # an Unsloth notebook: the lowest layer, so everything the user writes overrides it
        from unsloth_nb.importer import import_file

        try:
            options.imported = import_file(namespace.from_file)
            data = copy.deepcopy(options.imported.config)
        except ConfigError as exc:
            errors.append(exc)
    # Each source speaks Unsloth's names on its own, so a flag still overrides a pasted model_name.
    from_body, alias_errors = config_aliases.normalise(base or {})
    errors.extend(alias_errors)
    deep_update(data, from_body)
    if options.config_file:
        try:
            from_file, alias_errors = config_aliases.normalise(load_config_file(options.config_file))
            errors.extend(alias_errors)
            deep_update(data, from_file)
        except ConfigError as exc:
            errors.append(exc)
    try:
        deep_update(data, overrides_from_namespace(namespace))
    except ConfigError as exc:
        errors.append(exc)
    config, config_errors = TrainConfig.checked(data)
    return config, options, errors + list(config_errors)


def _their_spellings(args: list[str]) -> list[str]:
    """``--learning_rate 2e-4``, ``--load-in-4bit True``: Unsloth's and TRL's spellings, as our flags."""
    specs = [spec for spec in field_specs(TrainConfig) if spec.flag]
    flags = {spec.path: spec.flag for spec in specs if spec.flag}
    bool_flags = {spec.flag for spec in specs if spec.flag and spec.base_type is bool}
    return config_aliases.rewrite_argv(args, flags, bool_flags)


def _unknown_flag_errors(unknown: list[str], parser: argparse.ArgumentParser) -> list[FlagError]:
    """One error per unknown flag, naming the closest real flag; the value after an unknown flag goes with it."""
    known = [option for action in parser._actions for option in action.option_strings if option.startswith("--")]
    errors: list[FlagError] = []
    after_flag = False
    for arg in unknown:
        if arg.startswith("-") and not _NEGATIVE_NUMBER.match(arg):
            name = arg.split("=", 1)[0]
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            guess = f"; did you mean {close[0]}?" if close else ""
            errors.append(FlagError(f"unknown flag {name}{guess} ({SEE_HELP})"))
            after_flag = "=" not in arg
        elif after_flag:
            after_flag = False
        else:
            errors.append(FlagError(f"unexpected value {arg!r}: every value follows its flag, e.g. --epochs 2 ({SEE_HELP})"))
    return errors


#: A negative number as typed on a command line, scientific notation included (-1e-4, -0.5, -3).
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)


def _attach_negative_numbers(args: list[str]) -> list[str]:
    """``--lr -1e-4`` -> ``--lr=-1e-4``, for flags that take a value.

    argparse reads ``-1e-4`` as another flag, so the user would be told the value
    is missing instead of the real problem (a learning rate must be positive).
    """
    value_flags = {spec.flag for spec in field_specs(TrainConfig) if spec.flag and spec.base_type is not bool}
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in value_flags and index + 1 < len(args) and _NEGATIVE_NUMBER.match(args[index + 1]):
            out.append(f"{arg}={args[index + 1]}")
            index += 2
            continue
        out.append(arg)
        index += 1
    return out


def parse_cell_body(body: str) -> dict[str, Any]:
    """The YAML body of a %%unsloth_train cell."""
    if not body.strip():
        return {}
    try:
        return parse_yaml(body, "cell")
    except ConfigError:
        raise


def read_cell_body(body: str) -> tuple[dict[str, Any], Any]:
    """A cell body as config data: YAML, or an Unsloth notebook's cells pasted as Python (then also the import).

    YAML comes first: a body that reads as a mapping is a config. Anything else that parses as Python calling
    Unsloth or TRL (from_pretrained, get_peft_model, SFTTrainer, ...) is imported as ``--from`` would.
    """
    try:
        return parse_cell_body(body), None
    except ConfigError:
        from unsloth_nb.importer import import_code, looks_like_notebook_code

        if not looks_like_notebook_code(body):
            raise
        imported = import_code(body, "the pasted notebook cells")
        return imported.config, imported
