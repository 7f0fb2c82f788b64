"""Fault knobs: the ways RunPod fails in the wild, on demand.

Each knob reproduces one observed failure (see the RunPod reference, "failure
scenarios worth injecting"). Counted knobs are consumed: ``rate_limited =
{"podTerminate": 2}`` makes the next two ``podTerminate`` calls answer 429 and
the third succeed, which is how a retry loop is tested. Operations are named by
the top-level GraphQL field the SDK sends (``podFindAndDeployOnDemand``, ``pod``,
``myself``, ``gpuTypes``, ``podStop``, ``podResume``, ``podTerminate``, ...), or
``"*"`` for every call. A REST v2 call carries the name of its GraphQL twin
(``GET /v2/pods`` is ``myself``, ``GET /v2/pods/{id}`` is ``pod``, ``POST /v2/pods``
is ``podFindAndDeployOnDemand``, ``DELETE /v2/pods/{id}`` is ``podTerminate``,
``/v2/catalog/gpus`` is ``gpuTypes``), so one knob covers both APIs.

How each knob answers on each API: ``out_of_stock`` is GraphQL's "no longer any
instances available" error or REST's 400 problem with the same words;
``insufficient_balance`` a balance error or REST's 402; ``rate_limited`` a 429 with
``Retry-After``; ``server_errors`` a 5xx (a problem document on REST).

Tests set the fields directly; another process (a notebook under test, the CLI)
sets them through the emulator's loopback admin endpoint, which calls
:meth:`Faults.update` with JSON.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ANY_OPERATION = "*"
DIE_AS = ("exited", "terminated")
#: How a lookup of a pod that does not exist answers: each API's usual way, or forced to one of the others.
GONE_AS = ("usual", "null", "404", "error")
#: Who cannot reach the API while ``unreachable_from`` is set: nobody, pods (their own scoped keys), clients, or all.
UNREACHABLE_FROM = ("", "pods", "clients", "all")


@dataclass
class Faults:
    """Failure knobs read by the emulator on every call. All default to "behave"."""

    #: gpuTypeIds whose create (and resume) answers RunPod's "no longer any instances available" error.
    out_of_stock: set[str] = field(default_factory=set)
    #: operation -> how many more calls answer HTTP 429 with a ``Retry-After`` header and a JSON body without ``errors``.
    rate_limited: dict[str, int] = field(default_factory=dict)
    #: Seconds put in the ``Retry-After`` header of a 429.
    retry_after_s: int = 1
    #: operation -> how many more calls answer HTTP ``server_error_status`` with a JSON body without ``errors`` (nothing is done).
    server_errors: dict[str, int] = field(default_factory=dict)
    server_error_status: int = 500
    #: operation -> how many more calls answer a Cloudflare-style HTML 502 (nothing is done).
    bad_gateway: dict[str, int] = field(default_factory=dict)
    #: operation -> seconds to wait before handling each call (not consumed; the SDK gives up after 30 s).
    slow_s: dict[str, float] = field(default_factory=dict)
    #: The next N creates make the pod (or network volume), then close the connection without an answer.
    lost_creates: int = 0
    #: The next N created pods never start their container: ``runtime`` stays null for good.
    never_ready: int = 0
    #: Containers that start while this is set are killed this many seconds after starting.
    die_after_s: float | None = None
    #: How a killed container's pod ends: "exited" (evicted: EXITED, billing stops) or "terminated" (the pod vanishes).
    die_as: str = "exited"
    #: The next N ``podTerminate`` calls answer success but leave the pod running.
    silent_terminate_failures: int = 0
    #: The next N creates are refused for the account's balance (REST: HTTP 402).
    insufficient_balance: int = 0
    #: How looking up a pod that does not exist answers: "usual" (GraphQL null, REST 404), or "null", "404", "error".
    lookup_gone_as: str = "usual"
    #: "pods", "clients" or "all": every API call from them is dropped unanswered, as an outage or a cut network
    #: looks (a connection closed with no byte of answer); "" answers everyone. Not consumed.
    unreachable_from: str = ""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, knob: str, operations: Iterable[str]) -> bool:
        """Consume one count of a per-operation knob for any of ``operations``; True if one was taken."""
        counts: dict[str, int] = getattr(self, knob)
        with self._lock:
            for key in [*operations, ANY_OPERATION]:
                if counts.get(key, 0) > 0:
                    counts[key] -= 1
                    return True
        return False

    def take_count(self, knob: str) -> bool:
        """Consume one count of a plain counter knob such as ``lost_creates``; True if one was taken."""
        with self._lock:
            left: int = getattr(self, knob)
            if left > 0:
                setattr(self, knob, left - 1)
                return True
        return False

    def delay_for(self, operations: Iterable[str]) -> float:
        """Seconds to stall a call touching ``operations`` (the largest matching delay)."""
        keys = [*operations, ANY_OPERATION]
        return max((float(self.slow_s.get(key, 0.0)) for key in keys), default=0.0)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply JSON-shaped changes: scalars replace, per-operation dicts merge, ``out_of_stock`` replaces.

        Raises ValueError naming the knob when a name or value is wrong, so a typo
        in a test's fault setup fails loudly instead of silently doing nothing.
        """
        known = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault knob(s) {unknown}; known: {sorted(known)}")
        with self._lock:
            for name, value in changes.items():
                current = getattr(self, name)
                if name == "out_of_stock":
                    self.out_of_stock = {value} if isinstance(value, str) else {str(v) for v in value}
                elif isinstance(current, dict):
                    if not isinstance(value, Mapping):
                        raise ValueError(f"{name} takes an object of operation -> value")
                    cast = float if name == "slow_s" else int
                    current.update({str(k): cast(v) for k, v in value.items()})
                elif name == "die_as":
                    if value not in DIE_AS:
                        raise ValueError(f"die_as must be one of {DIE_AS}")
                    self.die_as = value
                elif name == "lookup_gone_as":
                    if value not in GONE_AS:
                        raise ValueError(f"lookup_gone_as must be one of {GONE_AS}")
                    self.lookup_gone_as = value
                elif name == "unreachable_from":
                    if value not in UNREACHABLE_FROM:
                        raise ValueError(f"unreachable_from must be one of {UNREACHABLE_FROM}")
                    self.unreachable_from = value
                elif name == "die_after_s":
                    self.die_after_s = None if value is None else float(value)
                else:
                    setattr(self, name, int(value))

    def reset(self) -> None:
        """Back to "behave" everywhere."""
        fresh = Faults()
        with self._lock:
            for knob in fields(self):
                if not knob.name.startswith("_"):
                    setattr(self, knob.name, getattr(fresh, knob.name))

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "out_of_stock": sorted(self.out_of_stock),
                "rate_limited": dict(self.rate_limited),
                "retry_after_s": self.retry_after_s,
                "server_errors": dict(self.server_errors),
                "server_error_status": self.server_error_status,
                "bad_gateway": dict(self.bad_gateway),
                "slow_s": dict(self.slow_s),
                "lost_creates": self.lost_creates,
                "never_ready": self.never_ready,
                "die_after_s": self.die_after_s,
                "die_as": self.die_as,
                "silent_terminate_failures": self.silent_terminate_failures,
                "insufficient_balance": self.insufficient_balance,
                "lookup_gone_as": self.lookup_gone_as,
                "unreachable_from": self.unreachable_from,
            }

    def unreachable(self, from_pod: bool) -> bool:
        """Whether a call from a pod (or from a client) finds the API unreachable right now."""
        who = self.unreachable_from
        return who == "all" or who == ("pods" if from_pod else "clients")
