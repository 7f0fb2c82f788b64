"""Client side of the emulator's loopback admin endpoint, for code that does not hold the emulator object.

A test that drives a notebook or a CLI in another process, or a person running
``unsloth-nb runpod emulator`` by hand, sets fault knobs and reads the bill with
these. Standard library only, so it works from any process.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def _call(api_base_url: str, method: str, path: str, payload: object | None = None) -> dict[str, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{api_base_url.rstrip('/')}/_emulator{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def emulator_state(api_base_url: str) -> dict[str, Any]:
    """Pods, ledger (``running_pods``, ``total_usd``), faults and stock."""
    return _call(api_base_url, "GET", "/state")


def set_faults(api_base_url: str, **changes: Any) -> dict[str, Any]:
    """Change fault knobs by name, e.g. ``set_faults(url, rate_limited={"podTerminate": 2})``; returns all knobs."""
    return _call(api_base_url, "POST", "/faults", changes)


def reset_faults(api_base_url: str) -> dict[str, Any]:
    return _call(api_base_url, "DELETE", "/faults")


def set_stock(api_base_url: str, stock: dict[str, int]) -> dict[str, Any]:
    """Free GPUs per gpuTypeId, e.g. ``{"NVIDIA H100 80GB HBM3": 0}``."""
    return _call(api_base_url, "POST", "/stock", stock)


def evict_pod(api_base_url: str, pod_id: str, *, remove: bool = False) -> dict[str, Any]:
    return _call(api_base_url, "POST", f"/pods/{pod_id}/evict" + ("?remove=1" if remove else ""), {})
