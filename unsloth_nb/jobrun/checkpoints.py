"""Checkpoint folders as the trainer writes them: ``checkpoint-<step>``.

The pod (what a restarted worker resumes from), the client (which copy is the newest)
and the Hub code (which folder a repo holds) must agree on what a checkpoint is: a
folder named ``checkpoint-<step>`` that is complete once its ``trainer_state.json``
exists, since the trainer writes that file last and a save cut short has none.
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)")


def checkpoint_step(name: str | Path) -> int:
    """The step in a checkpoint folder's name (a path's last part), or -1 for any other name."""
    match = CHECKPOINT_NAME.fullmatch(Path(name).name if isinstance(name, Path) else name)
    return int(match.group(1)) if match else -1


def newest_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` directly under ``folder``, or None."""
    if not folder.is_dir():
        return None
    complete = [p for p in folder.iterdir() if CHECKPOINT_NAME.fullmatch(p.name) and (p / "trainer_state.json").is_file()]
    return max(complete, key=checkpoint_step) if complete else None
