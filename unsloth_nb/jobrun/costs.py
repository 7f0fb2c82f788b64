"""The job's one cost ledger: every ``cost`` event folded into its part (teacher, GPU, judge) and one total.

Each source's ``cost`` events carry that source's running total (``usd_so_far``), so the latest event of a
source replaces its own part and never another's: a judge's $0.02 arriving after the pod's $0.30 must not
make the job look like it cost $0.02. Events without a source (the pod's billing) and the serverless
backend's are GPU time. The parts are kept apart in ``job.json`` (``costs``) and shown together
("$0.42 = teacher $0.10 + GPU $0.30 + judge $0.02") by the job view and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The parts in the order a job spends them: a teacher before training, the GPU during it, a judge after.
PARTS = ("teacher", "gpu", "judge")
_LABELS = {"teacher": "teacher", "gpu": "GPU", "judge": "judge"}


def part_of(source: object) -> str:
    """The ledger part a ``cost`` event's ``source`` pays for (no source, a pod, serverless: the GPU)."""
    return str(source) if source in ("teacher", "judge") else "gpu"


def usd(value: float) -> str:
    """Dollars with cents; a few tenths of a cent (a fake or cheap teacher) keep four decimals, not "$0.00"."""
    return f"${value:.4f}" if 0 < abs(value) < 0.01 else f"${value:.2f}"


class CostLedger:
    """The latest ``usd_so_far`` of each part; ``total`` is their sum."""

    def __init__(self, parts: Mapping[str, float] | None = None) -> None:
        self.parts: dict[str, float] = dict(parts or {})

    def add(self, data: Mapping[str, Any]) -> None:
        """Fold one ``cost`` event's data (one without ``usd_so_far``, a price-only event, changes nothing)."""
        value = data.get("usd_so_far")
        if isinstance(value, int | float):
            self.parts[part_of(data.get("source"))] = float(value)

    @classmethod
    def from_events(cls, events: Iterable[Any]) -> CostLedger:
        """A ledger from events (anything with ``kind`` and ``data``), other kinds skipped."""
        ledger = cls()
        for event in events:
            if event.kind == "cost":
                ledger.add(event.data)
        return ledger

    @property
    def empty(self) -> bool:
        return not self.parts

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def to_json(self) -> dict[str, float]:
        """Each part rounded to a millionth of a dollar, in spending order (what ``job.json`` keeps)."""
        return {part: round(self.parts[part], 6) for part in PARTS if part in self.parts}

    def text(self) -> str:
        """``$0.42 = teacher $0.10 + GPU $0.30 + judge $0.02``; a GPU-only job just ``$0.30``."""
        if not self.parts:
            return ""
        if set(self.parts) == {"gpu"}:
            return usd(self.parts["gpu"])
        split = " + ".join(f"{_LABELS[part]} {usd(self.parts[part])}" for part in PARTS if part in self.parts)
        return f"{usd(self.total)} = {split}"


def estimate_line(parts: dict[str, float | None]) -> str | None:
    """The plan's whole-job figure from each part's estimate (None: that part's price is unknown), in the ledger's
    form; nothing when a single part spends (its own line already says it)."""
    given = [part for part in PARTS if part in parts]
    if len(given) < 2:
        return None
    known = [parts[part] for part in given if parts[part] is not None]
    total = sum(value for value in known if value is not None)
    split = " + ".join(
        f"{_LABELS[part]} " + (f"~{usd(value)}" if (value := parts[part]) is not None else "unknown") for part in given
    )
    figure = f"~{usd(total)}" if len(known) == len(given) else f"more than ~{usd(total)} (a price is unknown)"
    bound = " (the judge's part is an upper bound)" if "judge" in given else ""
    return f"Estimated cost of the whole job: {figure} = {split}{bound}."


__all__ = ["PARTS", "CostLedger", "estimate_line", "part_of", "usd"]
