"""Every placement, by name, in the order ``placement: auto`` asks them.

A line here names the module and class of one backend; the module is imported the
first time a job (or a plan) needs it, so each backend's own libraries load only
then and ``import unsloth_nb`` stays light. Adding a placement is one folder under
``backends/`` and one line in :data:`unsloth_nb.placements.BUILTIN_BACKENDS`; a test or a plugin may also call
:func:`register_backend` with an instance.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from unsloth_nb.errors import PlanError
from unsloth_nb.placements import BUILTIN_BACKENDS

if TYPE_CHECKING:
    from unsloth_nb.backends.base import Backend

#: name -> "module:Class", in the order auto placement asks them (the table lives in unsloth_nb.placements,
#: which config reads too).
_BUILTIN: dict[str, str] = dict(BUILTIN_BACKENDS)

_order: list[str] = list(_BUILTIN)
_targets: dict[str, str | Backend] = dict(_BUILTIN)
_loaded: dict[str, Backend] = {}
_lock = threading.Lock()


def register_backend(backend: Backend, *, before: str | None = None, after: str | None = None) -> None:
    """Add (or replace) a placement under ``backend.name``; auto placement asks it where it stands in the order.

    Without ``before``/``after`` a new name goes last and a replaced one keeps its place.
    """
    with _lock:
        name = backend.name
        if name in _order and (before or after):
            _order.remove(name)
        if name not in _order:
            anchor = before or after
            if anchor is None:
                _order.append(name)
            else:
                if anchor not in _order:
                    raise ValueError(f"no backend {anchor!r} to place {name!r} beside; known: {', '.join(_order)}")
                _order.insert(_order.index(anchor) + (1 if after else 0), name)
        _targets[name] = backend
        _loaded[name] = backend


def unregister_backend(name: str) -> None:
    """Remove a placement that :func:`register_backend` added; a built-in one goes back to its own class."""
    with _lock:
        _loaded.pop(name, None)
        if name in _BUILTIN:
            _targets[name] = _BUILTIN[name]
        else:
            _targets.pop(name, None)
            if name in _order:
                _order.remove(name)


def backend_names() -> list[str]:
    with _lock:
        return list(_order)


def get_backend(name: str) -> Backend:
    """The backend for a placement name; a PlanError names the known ones (or the missing extra)."""
    with _lock:
        found = _loaded.get(name)
        target = _targets.get(name)
        known = ", ".join(_order)
    if found is not None:
        return found
    if target is None:
        raise PlanError(f"unknown placement {name!r}; known: {known}")
    if not isinstance(target, str):
        return target
    module_name, _, class_name = target.partition(":")
    try:
        backend: Backend = getattr(importlib.import_module(module_name), class_name)()
    except ImportError as exc:
        raise PlanError(f"the {name} backend cannot load ({exc}); install unsloth-nb[{name}]") from None
    with _lock:
        return _loaded.setdefault(name, backend)


def loaded_backends() -> list[Backend]:
    """The backends this process has used (at exit, only these can have anything to end)."""
    with _lock:
        return list(_loaded.values())


def backends() -> list[Backend]:
    """Every placement, in auto placement's order."""
    return [get_backend(name) for name in backend_names()]


__all__ = ["backend_names", "backends", "get_backend", "loaded_backends", "register_backend", "unregister_backend"]
