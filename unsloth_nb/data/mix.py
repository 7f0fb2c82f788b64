"""Mixing datasets by weight (``dataset.mix``), as Unsloth's Qwen3 notebook mixes reasoning and chat rows.

The rule: every row of the scarcest source (relative to its weight) is kept, and each
other source gives ``weight x total`` rows drawn at random with ``dataset.seed``; the
mixed rows are then shuffled with the same seed. So ``reasoning=75%, chat=25%`` with
3,000 reasoning rows and 50,000 chat rows trains on 3,000 + 1,000 rows, as the notebook's
``sample(int(len(reasoning) * 0.25 / 0.75))`` does. Each source is validated like a
single dataset first, so a problem still names its ``file:line``; ``dataset.max_rows``
applies to the mixed rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from unsloth_nb.config import DatasetConfig
from unsloth_nb.config.dataset_mix import parse_mix
from unsloth_nb.data.formats import FORMAT_LABELS
from unsloth_nb.data.records import _Part
from unsloth_nb.errors import DatasetError


def mixed_counts(available: list[int], weights: list[float]) -> list[int]:
    """Rows to take from each source: the largest mix with these weights that the sources can fill."""
    usable = [(count, weight) for count, weight in zip(available, weights, strict=True) if count > 0]
    if not usable:
        return [0 for _ in available]
    total = min(count / weight for count, weight in usable)
    return [min(count, round(weight * total)) if count > 0 else 0 for count, weight in zip(available, weights, strict=True)]


def read_mix(config: DatasetConfig, read: Callable[[str], _Part], max_seq_length: int) -> _Part:
    """Read every source of ``config.mix`` with ``read`` and draw the mixed rows into one part."""
    entries = parse_mix(config.mix)
    parts = [read(entry.source) for entry in entries]
    kinds = {part.display: "text" if part.format == "text" else "conversation" for part in parts if part.rows}
    if len(set(kinds.values())) > 1:
        text = [name for name, kind in kinds.items() if kind == "text"]
        chat = [name for name, kind in kinds.items() if kind != "text"]
        raise DatasetError(
            f"dataset.mix: {', '.join(text)} hold{'s' if len(text) == 1 else ''} plain text but {', '.join(chat)} "
            f"hold{'s' if len(chat) == 1 else ''} conversations; plain text and conversations cannot be mixed",
        )
    counts = mixed_counts([len(part.rows) for part in parts], [entry.weight for entry in entries])
    rng = random.Random(config.seed)
    mixed = _Part(display=" + ".join(part.display for part in parts))
    mixed.format = next((part.format for part in parts if part.rows), None)
    picked: list[tuple[dict, str, int]] = []
    total = sum(counts)
    for entry, part, take in zip(entries, parts, counts, strict=True):
        chosen = sorted(rng.sample(range(len(part.rows)), take)) if take < len(part.rows) else range(len(part.rows))
        picked += [(part.rows[i], part.origins[i], part.tokens[i]) for i in chosen]
        mixed.records += part.records
        mixed.problems += part.problems
        mixed.long_dropped += part.long_dropped
        mixed.unknown_format = mixed.unknown_format or part.unknown_format
        mixed.pinned.update(part.pinned)
        mixed.info += part.info
        for ours, theirs in part.columns.items():
            mixed.columns.setdefault(ours, theirs)
        if part.rows:  # the trainer's cuts among the rows drawn, in proportion
            mixed.truncated += round(part.truncated * take / len(part.rows))
            mixed.tokens_cut += round(part.tokens_cut * take / len(part.rows))
        share = f"{take / total:.0%}" if total else "0%"
        label = FORMAT_LABELS.get(part.format or "", part.format or "?")
        mixed.mix_lines += [line for line in part.source_lines() if line]
        mixed.mix_lines.append(
            f"mix: {part.display}: {take:,} of {len(part.rows):,} rows ({share}; weight {entry.weight:.0%}, {label})"
        )
    rng.shuffle(picked)
    if config.max_rows is not None:
        picked = picked[: config.max_rows]
    for row, origin, tokens in picked:
        mixed.rows.append(row)
        mixed.origins.append(origin)
        mixed.tokens.append(tokens)
    mixed.mix_lines.append(f"mix: {len(mixed.rows):,} rows in all, shuffled with dataset.seed={config.seed}")
    return mixed
