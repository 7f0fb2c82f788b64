"""Config files and plain dicts: YAML/JSON reading with file:line errors, dotted keys, overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unsloth_nb.errors import ConfigError


# ---------------------------------------------------------------------- files and dicts
def parse_yaml(text: str, source: str = "<config>") -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError("config", f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{source}: expected a mapping of fields at the top level")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("config", f"{p}: no such file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ConfigError("config", f"{p}: expected a JSON object at the top level")
        return data
    return parse_yaml(text, str(p))


_SHORTHAND = {"model": "name", "dataset": "path"}


def expand_dotted(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"lora.r": 8}`` -> ``{"lora": {"r": 8}}``; plain nested dicts pass through.

    ``model`` and ``dataset`` may be plain strings and still get nested keys
    (``dataset="qa.jsonl", dataset.skip_invalid=True``).
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        parts = str(key).split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if isinstance(child, str) and part in _SHORTHAND:
                child = {_SHORTHAND[part]: child}
            elif child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(".".join(parts[: depth + 1]), f"expected a mapping of fields, got {child!r}")
            node[part] = child
            node = child
        leaf = parts[-1]
        if isinstance(value, Mapping) and leaf != "columns":
            value = expand_dotted(value)
        existing = node.get(leaf)
        if isinstance(existing, dict) and isinstance(value, dict) and leaf != "columns":
            deep_update(existing, value)
        elif isinstance(existing, dict) and isinstance(value, str) and leaf in _SHORTHAND:
            existing[_SHORTHAND[leaf]] = value
        else:
            node[leaf] = value
    return out


def deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``overrides`` onto ``base`` in place; strings for model/dataset replace their name/path.

    A layer that names one dataset (``dataset.path``) replaces a lower layer's ``dataset.mix``, and a mix replaces
    a path: ``--dataset local.jsonl`` over an imported notebook that mixes two Hub datasets trains on the file.
    """
    for key, value in overrides.items():
        current = base.get(key)
        if key == "dataset" and isinstance(current, dict):
            _replace_dataset_choice(current, value)
        if isinstance(current, dict) and isinstance(value, Mapping) and key != "columns":
            deep_update(current, value)
        elif isinstance(current, dict) and isinstance(value, str) and key in ("model", "dataset"):
            current["name" if key == "model" else "path"] = value
        else:
            base[key] = value
    return base


def _replace_dataset_choice(current: dict[str, Any], value: Any) -> None:
    """Drop the lower layer's path or mix when the upper layer gives the other (they exclude each other)."""
    if isinstance(value, str) or (isinstance(value, Mapping) and value.get("path") and "mix" not in value):
        current.pop("mix", None)
    elif isinstance(value, Mapping) and value.get("mix") and "path" not in value:
        current.pop("path", None)
