"""The emulator's billing ledger: what a pod would have cost, and whether anything still bills.

RunPod bills compute per second from the moment a pod is rented until it is
stopped or terminated, whether or not the container ever came up and whether or
not it is crash-looping. The ledger follows that rule, so "no pod left running"
is a single assertion at the end of every test that touches RunPod. Entries
outlive their pods: a terminated pod's seconds and dollars stay on the bill.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LedgerEntry:
    """One pod's billing history: the intervals during which it was billed."""

    pod_id: str
    name: str
    gpu_type_id: str | None
    cost_per_hr: float
    intervals: list[list[float | None]] = field(default_factory=list)  # [start, end or None], monotonic seconds

    @property
    def running(self) -> bool:
        return bool(self.intervals) and self.intervals[-1][1] is None

    def seconds(self, now: float) -> float:
        total: float = 0
        for start, end in self.intervals:
            assert start is not None  # an interval always has its start; only the end may be open
            total += (now if end is None else end) - start
        return total


class Ledger:
    """Thread-safe per-pod billing: ``start``/``stop`` open and close billed intervals."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, LedgerEntry] = {}

    def start(self, pod_id: str, name: str, gpu_type_id: str | None, cost_per_hr: float) -> None:
        """Begin billing ``pod_id`` (no-op while it already bills)."""
        with self._lock:
            entry = self._entries.setdefault(pod_id, LedgerEntry(pod_id, name, gpu_type_id, cost_per_hr))
            if not entry.running:
                entry.intervals.append([self._clock(), None])

    def stop(self, pod_id: str) -> None:
        """Stop billing ``pod_id`` (no-op when it does not bill)."""
        with self._lock:
            entry = self._entries.get(pod_id)
            if entry is not None and entry.running:
                entry.intervals[-1][1] = self._clock()

    def running_pods(self) -> list[str]:
        """Ids of pods that are billing now; a test ends with this empty."""
        with self._lock:
            return [pod_id for pod_id, entry in self._entries.items() if entry.running]

    def pod_seconds(self, pod_id: str) -> float:
        """Seconds billed so far for ``pod_id`` (0 for a pod never seen)."""
        with self._lock:
            entry = self._entries.get(pod_id)
            return 0.0 if entry is None else entry.seconds(self._clock())

    def pod_usd(self, pod_id: str) -> float:
        with self._lock:
            entry = self._entries.get(pod_id)
            return 0.0 if entry is None else entry.seconds(self._clock()) * entry.cost_per_hr / 3600.0

    def total_seconds(self) -> float:
        with self._lock:
            now = self._clock()
            return sum(entry.seconds(now) for entry in self._entries.values())

    def total_usd(self) -> float:
        with self._lock:
            now = self._clock()
            return sum(entry.seconds(now) * entry.cost_per_hr / 3600.0 for entry in self._entries.values())

    def pod_ids(self) -> list[str]:
        """Every pod ever billed, in creation order, terminated ones included."""
        with self._lock:
            return list(self._entries)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary, for the admin endpoint and for a failing test's message."""
        with self._lock:
            now = self._clock()
            pods: list[dict[str, Any]] = [
                {
                    "pod_id": entry.pod_id,
                    "name": entry.name,
                    "gpu_type_id": entry.gpu_type_id,
                    "cost_per_hr": entry.cost_per_hr,
                    "running": entry.running,
                    "seconds": round(entry.seconds(now), 3),
                    "usd": round(entry.seconds(now) * entry.cost_per_hr / 3600.0, 6),
                }
                for entry in self._entries.values()
            ]
        return {
            "pods": pods,
            "running_pods": [p["pod_id"] for p in pods if p["running"]],
            "total_usd": round(sum(p["usd"] for p in pods), 6),
        }
