"""Jobs: the lifecycle vocabulary, the event log, the job folder, the Job handle and its controller.

A job's state and events live here; backends and views depend on this package, never the other way round.

``unsloth_nb.jobs()`` is also the public call that lists jobs (:func:`unsloth_nb.api.jobs`): once this
package is imported, Python binds the name ``unsloth_nb.jobs`` to it, so the package itself answers the call.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _JobsPackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from unsloth_nb.api import jobs

        return jobs(*args, **kwargs)


sys.modules[__name__].__class__ = _JobsPackage
