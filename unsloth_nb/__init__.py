"""unsloth-nb: fine-tune LLMs with LoRA/QLoRA (Unsloth) from a notebook.

``import unsloth_nb`` stays light (no torch, transformers or unsloth): the public
names below are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Job",
    "TrainConfig",
    "TrainingPanel",
    "UnslothNbError",
    "__version__",
    "compare",
    "enhance",
    "jobs",
    "load_ipython_extension",
    "load_job",
    "plan",
    "train",
    "unload_ipython_extension",
]

_LAZY = {
    "Job": ("unsloth_nb.api", "Job"),
    "TrainConfig": ("unsloth_nb.config", "TrainConfig"),
    "UnslothNbError": ("unsloth_nb.errors", "UnslothNbError"),
    "TrainingPanel": ("unsloth_nb.ui.panel", "TrainingPanel"),
    "train": ("unsloth_nb.api", "train"),
    "plan": ("unsloth_nb.api", "plan"),
    "jobs": ("unsloth_nb.api", "jobs"),
    "load_job": ("unsloth_nb.api", "load_job"),
    "compare": ("unsloth_nb.ui.compare", "compare"),
    "enhance": ("unsloth_nb.teacher.standalone", "enhance"),
}

if TYPE_CHECKING:
    from unsloth_nb.api import jobs, load_job, plan, train
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.errors import UnslothNbError
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.teacher.standalone import enhance
    from unsloth_nb.ui.compare import compare
    from unsloth_nb.ui.panel import TrainingPanel


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'unsloth_nb' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext unsloth_nb``: register the magics (light; training loads on first use)."""
    from unsloth_nb.ui.magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from unsloth_nb.ui.magics import unregister

    unregister(ipython)
