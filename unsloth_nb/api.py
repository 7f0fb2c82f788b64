"""The Python API under the magic, the panel and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unsloth_nb.config import TrainConfig, deep_update, expand_dotted, load_config_file
from unsloth_nb.jobrun.controller import launch
from unsloth_nb.jobrun.controller import load_job as _load_job
from unsloth_nb.jobrun.job import Job, set_job_display
from unsloth_nb.jobrun.preflight import prepare
from unsloth_nb.jobrun.store import JobRecord, list_jobs
from unsloth_nb.planning.planner import Plan


def as_config(config: TrainConfig | Mapping[str, Any] | str | Path | None = None, **overrides: Any) -> TrainConfig:
    """A validated TrainConfig from an object, a dict, or a YAML/JSON file path, with keyword overrides.

    Nested fields take dotted or double-underscore names:
    ``as_config("job.yaml", lora__r=8)`` or ``as_config(model="...", dataset="...")``.
    """
    if isinstance(config, TrainConfig):
        data = config.to_dict()
    elif isinstance(config, (str, Path)):
        data = load_config_file(config)
    else:
        data = dict(config or {})
    # Each source may speak Unsloth's names (model_name=..., learning_rate=...); a keyword still overrides the file.
    from unsloth_nb.config_aliases import normalise
    from unsloth_nb.errors import raise_all

    data, errors = normalise(data)
    extra, more = normalise(expand_dotted({key.replace("__", "."): value for key, value in overrides.items()}))
    deep_update(data, extra)
    config, problems = TrainConfig.checked(data)
    raise_all([*errors, *more, *problems])
    return config


def train(
    config: TrainConfig | Mapping[str, Any] | str | Path | None = None,
    *,
    wait: bool = False,
    base_dir: str | Path | None = None,
    yes: bool = False,
    **overrides: Any,
) -> Job:
    """Check, plan and start a fine-tuning job; returns its Job at once (or when done with ``wait``).

    Every user mistake (bad field, bad dataset row, missing key) raises an
    UnslothNbError here, before anything starts. ``yes``: the teacher's and the judge's cost estimates are not
    asked about (without it, an estimate above their ``confirm_above_usd`` stops that phase with a message).
    """
    job = launch(as_config(config, **overrides), base_dir, confirm=None, judge_yes=yes)
    assert job is not None  # confirm=None: nothing to ask, so it starts
    return job.wait() if wait else job


def plan(config: TrainConfig | Mapping[str, Any] | str | Path | None = None, **overrides: Any) -> Plan:
    """Where and at what cost the job would run, without starting it."""
    return prepare(as_config(config, **overrides), check_secrets=False).plan


def jobs() -> list[JobRecord]:
    """Jobs recorded on this machine, newest first."""
    return list_jobs()


def load_job(job_id: str, *, reattach: bool = True) -> Job:
    """A handle on a recorded job; one whose process died is taken over (see ``controller.load_job``)."""
    return _load_job(job_id, reattach=reattach)


def _show_in_notebook(job: Job) -> None:
    """Until the notebook layer is imported: import it (it registers its own display) and show."""
    from unsloth_nb.ui.view import show_job

    show_job(job)


# The notebook layer is how a job shows itself; the jobrun package never imports it.
set_job_display(_show_in_notebook)
