"""The phases a job may have, in the order they run.

A new phase is one module implementing :class:`~unsloth_nb.phases.base.Phase` and one
:func:`register_phase` line (here for built-in phases, or from the module that adds it).
Whether a job has a phase is the phase's own ``applies(config)``; where it runs is its
``needs(config).runs_on``.
"""

from __future__ import annotations

import threading

from unsloth_nb.phases.base import Phase
from unsloth_nb.phases.enhance import EnhancePhase
from unsloth_nb.phases.evaluation import evaluation_phases
from unsloth_nb.phases.export import ExportPhase
from unsloth_nb.phases.load import LoadPhase
from unsloth_nb.phases.save import SavePhase
from unsloth_nb.phases.train import TrainPhase

_phases: list[Phase] = [LoadPhase(), TrainPhase(), SavePhase()]
_lock = threading.Lock()


def register_phase(phase: Phase, *, before: str | None = None, after: str | None = None) -> None:
    """Add (or replace, by name) a phase; ``before``/``after`` name the phase it goes beside, else it goes last."""
    if before and after:
        raise ValueError("give before or after, not both")
    with _lock:
        _phases[:] = [p for p in _phases if p.name != phase.name]
        anchor = before or after
        if anchor is None:
            _phases.append(phase)
            return
        names = [p.name for p in _phases]
        if anchor not in names:
            raise ValueError(f"no phase {anchor!r} to place {phase.name!r} beside; known: {', '.join(names)}")
        _phases.insert(names.index(anchor) + (1 if after else 0), phase)


def unregister_phase(name: str) -> None:
    with _lock:
        _phases[:] = [p for p in _phases if p.name != name]


def all_phases() -> list[Phase]:
    with _lock:
        return list(_phases)


def _register_built_in_extras() -> None:
    """The teacher's ``enhance`` before ``load`` (only with ``teacher:``), the judge's phases (``answers`` after
    ``save``, ``judge`` after it; only with ``judge:``), then ``export`` (only with GGUF, Ollama, merged_4bit or a
    merged push)."""
    register_phase(EnhancePhase(), before="load")
    anchor = "save"
    for phase in evaluation_phases():
        register_phase(phase, after=anchor)
        anchor = phase.name
    register_phase(ExportPhase(), after="answers")  # after the answers: a 4-bit merge changes the loaded model


_register_built_in_extras()

__all__ = ["all_phases", "register_phase", "unregister_phase"]
