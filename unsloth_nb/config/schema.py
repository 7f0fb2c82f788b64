"""The schema machinery: how a field is declared (:func:`knob`), walked (:func:`field_specs`), built and checked.

Sections declare fields with :func:`knob`; everything else (flags, docs, the panel's form, validation) reads the
metadata, so a new section needs no code here.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from unsloth_nb.errors import ConfigError, register_field_names

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

#: Keys that look like secrets. A config that carries one is refused: secrets
#: live in the environment so that saved configs and notebooks never hold them.
SECRET_KEY_PATTERN = re.compile(r"(token|api_key|apikey|secret|password)$", re.IGNORECASE)

Placement = Literal["auto", "local", "runpod", "serverless"]


def knob(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    aliases: tuple[str, ...] = (),
) -> Any:
    """Declare a config field with the facts the CLI, the magic and validation need."""
    meta = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "aliases": aliases,
    }
    if isinstance(default, (list, dict, tuple)):
        frozen = default
        return field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------------- schema walking
@dataclass(frozen=True)
class FieldSpec:
    """One leaf field of the schema: its dotted path, type and metadata."""

    path: str
    type: Any
    default: Any
    help: str
    flag: str | None
    choices: tuple[Any, ...] | None
    minimum: float | None
    maximum: float | None

    @property
    def base_type(self) -> Any:
        return _strip_optional(self.type)[0]

    @property
    def optional(self) -> bool:
        return _strip_optional(self.type)[1]


#: The dataclass at the top of the schema. TrainConfig is built from this module's parts, so it names itself
#: (:func:`schema_root`) rather than being imported here.
_ROOT: list[type] = []
_FLAGS: dict[str, str] = {}
_BOOLS: set[str] = set()
_Root = typing.TypeVar("_Root", bound=type)


def schema_root(cls: _Root) -> _Root:
    """Class decorator: ``cls`` is the schema :func:`field_specs` walks when given no class."""
    _ROOT[:] = [cls]
    _FLAGS.clear()
    _BOOLS.clear()
    return cls


def field_specs(cls: type | None = None, prefix: str = "") -> list[FieldSpec]:
    """Every leaf field of the schema, in declaration order (drives CLI flags and docs)."""
    if cls is None:
        cls = _ROOT[0]  # importing any config module imports the package, which defines TrainConfig
    specs: list[FieldSpec] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        path = f"{prefix}{f.name}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            specs += field_specs(hint, prefix=f"{path}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]  # no default: the factory is set
        m = f.metadata
        specs.append(
            FieldSpec(path, hint, default, m.get("help", ""), m.get("flag"), m.get("choices"), m.get("minimum"), m.get("maximum"))
        )
    return specs


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _build(cls: type, data: dict[str, Any], prefix: str, errors: list[ConfigError], explicit: set[str]) -> Any:
    """The dataclass ``cls`` from ``data``; a bad field is noted in ``errors`` and keeps its default."""
    hints = typing.get_type_hints(cls)
    fields_by_name = {f.name: f for f in dataclasses.fields(cls)}
    alias_to_name = {a: f.name for f in dataclasses.fields(cls) for a in f.metadata.get("aliases", ())}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_str = str(key)
        name = alias_to_name.get(key_str, key_str)
        where = f"{prefix}{key_str}"
        if SECRET_KEY_PATTERN.search(key_str):
            errors.append(
                ConfigError(
                    where,
                    "secrets are never part of a config (saved configs and notebooks would leak them); "
                    "set HF_TOKEN, RUNPOD_API_KEY, OPENAI_API_KEY or ANTHROPIC_API_KEY in the environment instead",
                )
            )
            continue
        if name not in fields_by_name:
            errors.append(ConfigError(where, _unknown_field(key_str, prefix, list(fields_by_name), list(alias_to_name))))
            continue
        if name in kwargs:
            errors.append(ConfigError(where, f"given twice (as {name} and an alias)"))
            continue
        hint = hints[name]
        path = f"{prefix}{name}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if isinstance(value, str) and name in ("model", "dataset"):
                value = {"name" if name == "model" else "path": value}
            if isinstance(value, (list, tuple)) and name == "dataset":
                value = {"mix": value}  # dataset: [a.jsonl=75%, {path: org/chat, weight: 25%}]
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                errors.append(ConfigError(path, f"expected a mapping of {hint.__name__} fields, got {value!r}"))
                continue
            kwargs[name] = _build(hint, dict(value), f"{path}.", errors, explicit)
            continue
        if path == "dataset.mix":
            from unsloth_nb.config.dataset_mix import entries_from

            value = entries_from(value)  # a file's [{path:, weight:}] mappings read as SOURCE=WEIGHT
        try:
            kwargs[name] = coerce(value, hint, path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        explicit.add(path)
    return cls(**kwargs)


def _unknown_field(key: str, prefix: str, names: list[str], aliases: list[str]) -> str:
    """ "unknown field", with the closest name here, or the section where a field of that name lives."""
    close = difflib.get_close_matches(key, [*names, *aliases], n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {prefix}{close[0]}?"
    elsewhere = [spec.path for spec in field_specs() if spec.path.rsplit(".", 1)[-1] == key and not spec.path.startswith(prefix)]
    if not elsewhere:
        leaves = {spec.path.rsplit(".", 1)[-1]: spec.path for spec in field_specs()}
        elsewhere = [leaves[m] for m in difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.75)]
    if elsewhere:
        return f"unknown field; did you mean {elsewhere[0]}?"
    return f"unknown field; allowed here: {', '.join(sorted(names))}"


def flag_of(path: str) -> str | None:
    """The command-line flag of a config field (``lora.r`` -> ``--lora-r``), or None."""
    if not _FLAGS:
        _FLAGS.update({spec.path: spec.flag for spec in field_specs() if spec.flag})
    return _FLAGS.get(path)


def is_bool_field(path: str) -> bool:
    """Whether a config field is on/off (its flag has a ``--no-`` form)."""
    if not _BOOLS:
        _BOOLS.update(spec.path for spec in field_specs() if spec.base_type is bool)
    return path in _BOOLS


register_field_names(flag_of, is_bool_field)


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
_DURATION_FIELDS = {"runpod.max_runtime", "runpod.ready_timeout", "serverless.execution_timeout"}


def coerce(value: Any, hint: Any, path: str) -> Any:
    """Turn YAML/JSON/flag values into the field's type, or say why not.

    Strings are accepted for numbers and booleans because CLI flags are strings
    and PyYAML reads ``2e-4`` (no dot) as a string.
    """
    base, optional = _strip_optional(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and optional):
        if optional:
            return None
        raise ConfigError(path, "a value is required")
    if path in _DURATION_FIELDS and isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ConfigError(path, f"{value!r} is not a duration; use seconds or a unit such as 90m or 2h")
        return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "").lower() or None]
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(path, f"expected true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool):
            raise ConfigError(path, f"expected a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(path, f"expected a whole number, got {value!r}")
    if base is float:
        if isinstance(value, bool):
            raise ConfigError(path, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(path, f"expected a number, got {value!r}")
    if base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(path, f"expected text, got {value!r}")
    origin = typing.get_origin(base)
    if origin is list:
        if isinstance(value, str):
            value = _split_list(value)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {value!r}")
        return [coerce(v, typing.get_args(base)[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            pairs = [p for p in value.split(",") if p.strip()]
            if not all("=" in p for p in pairs):
                raise ConfigError(path, f"expected name=value pairs separated by commas, got {value!r}")
            value = dict(p.split("=", 1) for p in pairs)
            value = {k.strip(): v.strip() for k, v in value.items()}
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    raise ConfigError(path, f"unsupported value {value!r}")  # pragma: no cover - schema bug


def _split_list(text: str) -> list[str]:
    """``a,b`` -> ``[a, b]``; a pasted list (``[a, b]``, ``['a', "b"]``) reads the same."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = (part.strip().strip("'\"").strip() for part in text.split(","))
    return [part for part in parts if part]


def _section_problems(section: Any, prefix: str) -> list[ConfigError]:
    errors: list[ConfigError] = []
    hints = typing.get_type_hints(type(section))
    for f in dataclasses.fields(section):
        if dataclasses.is_dataclass(hints[f.name]):
            continue
        value = getattr(section, f.name)
        path = f"{prefix}.{f.name}" if prefix else f.name
        m = f.metadata
        if value is None:
            continue
        choices = m.get("choices")
        if choices and value not in choices:
            errors.append(ConfigError(path, f"{value!r} is not one of: {', '.join(map(str, choices))}"))
            continue
        lo, hi = m.get("minimum"), m.get("maximum")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if lo is not None and (value < lo or (m.get("exclusive_minimum") and value == lo)):
                rel = "greater than" if m.get("exclusive_minimum") else "at least"
                errors.append(ConfigError(path, f"must be {rel} {lo:g}, got {value:g}"))
            elif hi is not None and value > hi:
                errors.append(ConfigError(path, f"must be at most {hi:g}, got {value:g}"))
    return errors


def sections_enable(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """A section that is off by default (``judge:``, ``teacher:``) is turned on by being given.

    ``judge: {model: x}`` means "evaluate" unless it says ``enabled: false``; ``judge: true`` is the short form.
    A section opts in with a class attribute ``ENABLED_BY_SECTION = True`` and an ``enabled`` field.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if not (isinstance(hint, type) and getattr(hint, "ENABLED_BY_SECTION", False)) or f.name not in data:
            continue
        section = data[f.name]
        if isinstance(section, bool):
            data[f.name] = {"enabled": section}
        elif isinstance(section, Mapping) and "enabled" not in section:
            data[f.name] = {**section, "enabled": True}
    return data
