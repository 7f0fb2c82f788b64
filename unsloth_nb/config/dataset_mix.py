"""``dataset.mix``: several sources, each with a weight, written ``SOURCE=WEIGHT``.

A weight is a plain number (``3``, ``0.75``) or a percentage (``75%``); weights are
proportions of the mixed rows. Percentages, when every entry has one, must add up to
100. A file may give the list as mappings (``[{path: a.jsonl, weight: 75%}]``); they
become the same ``SOURCE=WEIGHT`` text, so flags, fields and files share one form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from unsloth_nb.errors import ConfigError


@dataclass(frozen=True)
class MixEntry:
    source: str
    weight: float  # a proportion of the mixed rows, 0 < weight <= 1; the entries' weights add up to 1


def entries_from(value: Any) -> Any:
    """A file's list (mappings or text) as ``SOURCE=WEIGHT`` strings; anything else unchanged, for coerce to judge."""
    if not isinstance(value, (list, tuple)):
        return value
    out: list[Any] = []
    for item in value:
        if isinstance(item, Mapping):
            source = item.get("path", item.get("source", item.get("dataset", "")))
            weight = item.get("weight", item.get("percent", item.get("fraction", 1)))
            if "percent" in item and not str(weight).strip().endswith("%"):
                weight = f"{weight}%"
            out.append(f"{source}={weight}")
        else:
            out.append(item)
    return out


def parse_mix(entries: list[str], path: str = "dataset.mix") -> list[MixEntry]:
    """The entries with their weights as proportions; ConfigError naming the entry that is wrong."""
    raw: list[tuple[str, float, bool]] = []
    for index, entry in enumerate(entries):
        where = f"{path}[{index}]"
        source, sep, weight_text = str(entry).rpartition("=")
        if not sep:
            source, weight_text = str(entry), "1"
        source, weight_text = source.strip(), weight_text.strip()
        if not source:
            raise ConfigError(where, f"{entry!r} names no dataset; write SOURCE=WEIGHT, e.g. chat.jsonl=25%")
        percent = weight_text.endswith("%")
        try:
            weight = float(weight_text.rstrip("%").strip())
        except ValueError:
            raise ConfigError(where, f"weight {weight_text!r} is not a number or a percentage (0.25, 3 or 25%)") from None
        if weight <= 0:
            raise ConfigError(where, f"weight {weight_text!r} must be above 0 (leave the dataset out instead)")
        raw.append((source, weight / 100 if percent else weight, percent))
    if raw and all(percent for _, _, percent in raw):
        total = sum(weight for _, weight, _ in raw) * 100
        if abs(total - 100) > 0.01:
            raise ConfigError(path, f"the percentages add up to {total:g}%, not 100%")
    total = sum(weight for _, weight, _ in raw)
    return [MixEntry(source, weight / total) for source, weight, _ in raw]
