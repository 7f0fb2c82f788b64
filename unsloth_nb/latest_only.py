"""One background thread that works on the newest thing offered, and only that.

Checkpoints arrive faster than they can be copied or pushed when a run saves often.
Only the newest matters, so an item still waiting is replaced by a newer one (and
handed to ``on_dropped`` to clean up), while the item being worked on finishes. Used
by the client's checkpoint copy and by the pod's Hub push.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class LatestOnly(Generic[T]):
    """Runs ``work(item)`` in its own daemon thread for the newest item offered; ``offer`` never waits."""

    def __init__(
        self,
        work: Callable[[T], None],
        *,
        name: str,
        on_dropped: Callable[[T], None] | None = None,
        join_timeout: float = 10.0,
    ) -> None:
        self._work = work
        self._on_dropped = on_dropped
        self._join_timeout = join_timeout
        self._cond = threading.Condition()
        self._wanted: T | None = None
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def offer(self, item: T) -> None:
        with self._cond:
            if self._closed:
                dropped: T | None = item
            else:
                dropped, self._wanted = self._wanted, item
                self._cond.notify_all()
        if dropped is not None and self._on_dropped is not None:
            self._on_dropped(dropped)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is being worked on or waits to be; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._wanted is None, timeout)

    def close(self) -> None:
        """Take no more items, drop the waiting one, and give the one under way ``join_timeout`` to finish."""
        with self._cond:
            self._closed = True
            dropped, self._wanted = self._wanted, None
            self._cond.notify_all()
        if dropped is not None and self._on_dropped is not None:
            self._on_dropped(dropped)
        self._thread.join(timeout=self._join_timeout)

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._wanted is not None)
                if self._closed:
                    return
                item, self._wanted = self._wanted, None
                self._busy = True
            try:
                assert item is not None
                self._work(item)
            except Exception:  # the callers say what went wrong; one failure must not end the thread
                log.exception("%s failed", self._thread.name)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
