"""Unsloth's and TRL's own keyword names, read as our config fields.

Users arrive with an Unsloth notebook: ``FastLanguageModel.from_pretrained(model_name=...,
load_in_4bit=True)``, ``get_peft_model(r=16, lora_alpha=16, bias="none", ...)``,
``SFTConfig(learning_rate=2e-4, report_to="none", ...)``. Pasting those names into a cell
body, a config file or flags should just work: each one either maps to our field (flat,
in its own section, or in ours), or names a value unsloth-nb fixes, which is accepted when
it matches and refused with the reason when it does not.

Everything here runs on raw config data before :func:`unsloth_nb.config.TrainConfig.checked`
builds the dataclasses, so unknown names still get the usual "did you mean".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from unsloth_nb.errors import ConfigError

#: Their keyword -> our dotted field, grouped by where the notebooks pass it.
ALIASES: dict[str, str] = {
    # FastLanguageModel.from_pretrained
    "model_name": "model.name",
    "max_seq_length": "train.max_seq_length",
    "dtype": "model.dtype",
    "load_in_4bit": "model.load_in_4bit",
    "revision": "model.revision",
    "trust_remote_code": "model.trust_remote_code",
    # get_chat_template
    "chat_template": "model.chat_template",
    # get_peft_model (random_state seeds the LoRA init; our engine passes train.seed there)
    "r": "lora.r",
    "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout",
    "target_modules": "lora.target_modules",
    "use_rslora": "lora.use_rslora",
    "use_gradient_checkpointing": "lora.gradient_checkpointing",
    "random_state": "train.seed",
    # SFTConfig / TrainingArguments
    "per_device_train_batch_size": "train.batch_size",
    "gradient_accumulation_steps": "train.grad_accum",
    "warmup_steps": "train.warmup_steps",
    "max_steps": "train.max_steps",
    "num_train_epochs": "train.epochs",
    "learning_rate": "train.lr",
    "logging_steps": "train.logging_steps",
    "optim": "train.optim",
    "weight_decay": "train.weight_decay",
    "lr_scheduler_type": "train.scheduler",
    "seed": "train.seed",
    "packing": "train.packing",
    "save_steps": "train.save_steps",
    "eval_steps": "train.eval_steps",
    "max_length": "train.max_seq_length",
    "output_dir": "save.output_dir",
    # unsloth.chat_templates.train_on_responses_only (a call in the notebooks: a switch here)
    "train_on_responses_only": "train.train_on_responses_only",
    # model.generate(...) and tokenizer.apply_chat_template(enable_thinking=...) in the notebooks' inference cells
    "max_new_tokens": "generate.max_new_tokens",
    "temperature": "generate.temperature",
    "min_p": "generate.min_p",
    "top_p": "generate.top_p",
    "top_k": "generate.top_k",
    "enable_thinking": "generate.enable_thinking",
}


_FROM_PRETRAINED = ("model_name", "max_seq_length", "dtype", "load_in_4bit", "revision", "trust_remote_code")
_GET_PEFT_MODEL = ("r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "use_gradient_checkpointing")
#: The section of the call a name is passed to, where it may also be written (besides flat and its target's own):
#: ``model: {max_seq_length: 2048}`` as in from_pretrained, ``lora: {random_state: 3407}`` as in get_peft_model,
#: ``train: {output_dir: out}`` as in SFTConfig. Elsewhere it stays an unknown field, with "did you mean".
CALL_SECTION: dict[str, str] = {
    **{name: "train" for name, path in ALIASES.items() if path.startswith(("train.", "save."))},
    **{name: "lora" for name in (*_GET_PEFT_MODEL, "random_state")},
    **{name: "model" for name in _FROM_PRETRAINED},
}


@dataclass(frozen=True)
class Fixed:
    """A keyword whose value unsloth-nb decides: ``accepts`` says whether the user's value is that one."""

    accepts: Callable[[Any], bool]
    reason: str


def _is_none(value: Any) -> bool:
    return (
        value is None or value == {} or value == [] or (isinstance(value, str) and value.strip().lower() in ("none", "null", ""))
    )


def _is_false(value: Any) -> bool:
    return value is False or _is_none(value) or (isinstance(value, str) and value.strip().lower() in ("false", "no", "0"))


def _is_text(expected: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and value.strip().strip("'\"").lower() == expected


#: Their keyword -> the value we fix, and why another one is refused.
FIXED: dict[str, Fixed] = {
    "bias": Fixed(
        _is_text("none"),
        "unsloth-nb trains LoRA with bias='none' (Unsloth's optimised path); remove bias or set it to 'none'",
    ),
    "loftq_config": Fixed(
        _is_none,
        "unsloth-nb initialises LoRA without LoftQ; remove loftq_config or set it to None",
    ),
    "report_to": Fixed(
        lambda value: _is_none(value) or value == ["none"],
        "unsloth-nb reports to its own live chart and job events, not to an experiment tracker; "
        "remove report_to or set it to 'none'",
    ),
    "load_in_8bit": Fixed(
        _is_false,
        "unsloth-nb loads the base model in 4 bit (model.load_in_4bit) or 16 bit, not 8 bit; "
        "remove load_in_8bit or set it to False",
    ),
    "full_finetuning": Fixed(
        _is_false,
        "unsloth-nb trains LoRA adapters, not every weight; remove full_finetuning or set it to False",
    ),
    "instruction_part": Fixed(
        lambda value: False,
        "unsloth-nb finds the instruction and response markers in the chat template itself; remove instruction_part "
        "(train.train_on_responses_only switches masking on or off)",
    ),
    "response_part": Fixed(
        lambda value: False,
        "unsloth-nb finds the instruction and response markers in the chat template itself; remove response_part "
        "(train.train_on_responses_only switches masking on or off)",
    ),
}

#: dataset_text_field names the plain-text column; ours is ``text`` unless dataset.columns maps another.
TEXT_FIELD = "dataset_text_field"

#: The top-level names of our config (sections and placement).
SECTIONS = ("model", "dataset", "lora", "train", "save", "hub", "runpod", "judge", "generate", "teacher", "serverless")


def their_names(path: str) -> list[str]:
    """Unsloth's/TRL's names for one of our fields, other than its own leaf name (for --help)."""
    leaf = path.rsplit(".", 1)[-1]
    return [name for name, target in ALIASES.items() if target == path and name != leaf]


def _normalise_value(path: str, value: Any) -> Any:
    """Python literals and Unsloth's spellings of a value, as our field takes them."""
    if path == "model.dtype":
        if _is_none(value):
            return "auto"
        if isinstance(value, str):
            return value.strip().removeprefix("torch.")
    if path == "lora.gradient_checkpointing":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
    return value


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a).strip().lower() == str(b).strip().lower()


def normalise(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConfigError]]:
    """``data`` with every Unsloth/TRL name moved to our field, and the mistakes found on the way.

    A name is read at the top level (flat, as in a pasted call) or inside any section
    (``lora: {random_state: 3407}``, ``train: {output_dir: out}``). A fixed name that
    matches is dropped; one that does not is an error and dropped too, so the rest of the
    config is still checked. Two names for one field must agree.
    """
    out: dict[str, Any] = {}
    moved: list[tuple[str, str, Any]] = []  # (where it was written, our path, value)
    errors: list[ConfigError] = []
    for key, value in data.items():
        name = str(key)
        if name in SECTIONS and isinstance(value, Mapping):
            section: dict[str, Any] = {}
            for inner_key, inner in value.items():
                inner_name = str(inner_key)
                if not _collect(f"{name}.{inner_name}", inner_name, inner, name, moved, errors):
                    section[inner_name] = inner
            out[name] = section
        elif name in SECTIONS or name == "placement" or not _collect(name, name, value, "", moved, errors):
            out[name] = value
    for where, path, value in moved:
        _place(out, where, path, value, errors)
    for path in ("model.dtype", "lora.gradient_checkpointing"):
        section_name, leaf = path.split(".")
        section_data = out.get(section_name)
        if isinstance(section_data, dict) and leaf in section_data:
            section_data[leaf] = _normalise_value(path, section_data[leaf])
    return out, errors


def _collect(
    where: str, name: str, value: Any, section: str, moved: list[tuple[str, str, Any]], errors: list[ConfigError]
) -> bool:
    """Note an Unsloth/TRL name for moving, or check a fixed one; False when ``name`` is not theirs (or is ours here)."""
    target = ALIASES.get(name)
    if target is not None:
        if target == f"{section}.{name}" or (section and f"{section}.{name}" in _our_paths()):
            return False  # our own name, in our own section (judge.max_new_tokens is the judge's, not generate's; dataset.revision is not model.revision)
        if section and section != target.split(".")[0] and section != CALL_SECTION.get(name):
            # not where Unsloth or TRL take it (lora: {learning_rate: ...}): say where it goes
            errors.append(ConfigError(where, f"unknown field; did you mean {target}?"))
            return True
        moved.append((where, target, value))
        return True
    if name == TEXT_FIELD:
        if not _is_text("text")(value):
            moved.append((where, "dataset.columns", value))
        return True
    fixed = FIXED.get(name)
    if fixed is not None:
        if not fixed.accepts(value):
            errors.append(ConfigError(where, f"{value!r} is not what unsloth-nb uses: {fixed.reason}"))
        return True
    return False


def _our_paths() -> set[str]:
    """Every dotted path of our schema (read once; config sits above this module, so imported late)."""
    if not _PATHS:
        from unsloth_nb.config.schema import field_specs

        _PATHS.update(spec.path for spec in field_specs())
    return _PATHS


_PATHS: set[str] = set()


def _place(out: dict[str, Any], where: str, path: str, value: Any, errors: list[ConfigError]) -> None:
    """Write ``value`` at our ``path`` unless that field already holds a different value."""
    section_name, leaf = path.split(".")
    section = out.get(section_name)
    if section is None:
        section = out[section_name] = {}
    elif isinstance(section, str) and section_name in ("model", "dataset"):
        section = out[section_name] = {"name" if section_name == "model" else "path": section}
    if not isinstance(section, dict):
        return  # the section itself is wrong; TrainConfig.checked says so
    if path == "dataset.columns":
        columns = section.setdefault("columns", {})
        if not isinstance(columns, dict):
            return
        if "text" in columns and not _same(columns["text"], value):
            errors.append(ConfigError(where, f"given twice, as {where} and dataset.columns.text, with different values"))
            return
        columns["text"] = value
        return
    value = _normalise_value(path, value)
    if leaf in section and not _same(_normalise_value(path, section[leaf]), value):
        errors.append(
            ConfigError(
                path,
                f"given twice with different values ({where}: {value!r}, {path}: {section[leaf]!r}); keep one"
                + ("; unsloth-nb seeds the LoRA initialisation and training with one seed" if path == "train.seed" else ""),
            )
        )
        return
    section[leaf] = value


def rewrite_argv(args: list[str], flags: Mapping[str, str], bool_flags: set[str]) -> list[str]:
    """Their spellings on a command line, as our flags.

    ``--learning_rate 2e-4`` and ``--learning-rate 2e-4`` -> ``--lr 2e-4``;
    ``--load-in-4bit True`` -> ``--load-in-4bit``, ``--packing False`` -> ``--no-packing``.
    ``flags`` maps our field paths to their flags; ``bool_flags`` are the on/off ones.
    """
    alias_flags = {f"--{name.replace('_', '-')}": flags[path] for name, path in ALIASES.items() if path in flags}
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, eq, inline = arg.partition("=")
        name = name.replace("_", "-")
        name = alias_flags.get(name, name)
        if name.startswith("--no-") and alias_flags.get("--" + name[5:]) in bool_flags:
            name = "--no-" + alias_flags["--" + name[5:]][2:]
        if name in bool_flags:
            literal = inline if eq else (args[index] if index < len(args) else None)
            truth = _literal_bool(literal)
            if truth is not None:
                index += 0 if eq else 1
                out.append(name if truth else "--no-" + name[2:])
                continue
        out.append(f"{name}={inline}" if eq else name)
    return out


def _literal_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    return None
