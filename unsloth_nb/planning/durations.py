"""Durations as a plan says them: below the planner, so a backend's cost lines word time the same way."""

from __future__ import annotations


def rough_duration(seconds: float) -> str:
    """A duration as people say it (45 s, 12 min, 3 h 05 min, 2.5 days): plans are estimates, not clocks."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = int(minutes // 60)
    rest = round(minutes - hours * 60)
    if hours >= 48:
        return f"{seconds / 86400:.1f} days"
    return f"{hours} h {rest:02d} min"


__all__ = ["rough_duration"]
