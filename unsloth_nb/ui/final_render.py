"""The saved notebook shows the end: a view's displays are replaced by its final state once the job ended.

The view's flusher replaces them the moment the job ends (a live JupyterLab redraws at once). A headless
runner (nbclient, nbconvert) only applies updates that carry the running cell's id, so the end of the
next cell after the job's end does it once more, from IPython's ``post_execute`` hook.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol


class _Final(Protocol):
    @property
    def ended(self) -> bool: ...

    def show_final(self) -> None: ...


_awaiting_final: weakref.WeakSet[Any] = weakref.WeakSet()
_hook_lock = threading.Lock()
_hooked_shells: weakref.WeakSet[Any] = weakref.WeakSet()


def await_final(view: _Final) -> None:
    """Have the end of the next cell after the job's end update ``view``'s displays once more."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    with _hook_lock:
        _awaiting_final.add(view)
        if shell not in _hooked_shells:
            shell.events.register("post_execute", _update_finished_views)
            _hooked_shells.add(shell)


def _update_finished_views() -> None:
    """IPython's post_execute: runs in the cell that just ran, so its update carries that cell's id."""
    with _hook_lock:
        finished = [view for view in _awaiting_final if view.ended]
        for view in finished:
            _awaiting_final.discard(view)
    for view in finished:
        view.show_final()
