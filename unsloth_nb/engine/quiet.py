"""Keep library chatter out of the cell: our panel and CLI already show progress.

``datasets`` draws a progress bar for every ``map`` SFTTrainer and Unsloth run over the
rows (six bars before the first step). They are switched off while the engine prepares
data and switched back afterwards if they were on, so a user's own notebook code keeps
its bars. Warnings and errors are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_dataset_bars() -> Iterator[None]:
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
