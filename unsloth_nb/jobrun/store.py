"""Per-job folders: the durable record behind reattach, `unsloth-nb jobs` and cleanup.

Layout under the data root (``$UNSLOTH_NB_HOME``, else the platform's user data
dir)::

    jobs/<job_id>/
        job.json      id, state, placement, model, times, pid, artifacts, error
        config.json   the TrainConfig (it has no secret fields)
        plan.json     what the planner decided
        inputs.json   the folder relative dataset paths are read from
        dataset_sent.json  (RunPod) sha256, bytes and rows of the dataset the pod got, so a
                      reattaching process can send the same rows to a new pod
        events.jsonl  every event, appended and flushed as it happens
        pod.json      (RunPod) the job's pod: id, GPU, $/h, creation time, earlier pods
        pods/         (RunPod) <pod_id>.events.jsonl: each pod's own events as received, by
                      the pod's seq; where a reattaching process continues the stream
        outputs/      adapter, checkpoints (unless save.output_dir says otherwise)

Nothing here is secret. The RunPod worker's per-job token is not stored: a process
that reattaches reads it from the pod's environment through the RunPod API.

``job.json`` is rewritten atomically on each state change, so a reader never sees
half a file; events are the source of truth for history.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.errors import JobNotFoundError
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES


def data_root() -> Path:
    """Where job folders live; ``UNSLOTH_NB_HOME`` moves it (tests, shared servers)."""
    override = os.environ.get("UNSLOTH_NB_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("unsloth-nb", appauthor=False))


def jobs_root() -> Path:
    return data_root() / "jobs"


def new_job_id() -> str:
    """Sortable and short enough for a pod name: ``20261128-142501-3fa9``."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime()) + "-" + secrets.token_hex(2)


@dataclass
class JobRecord:
    """What ``job.json`` holds."""

    id: str
    model: str
    dataset: str
    placement: str = "local"
    state: str = "created"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    finished: float | None = None
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    error: str | None = None
    error_type: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> where it is on this machine
    result: dict[str, Any] | None = None  # the job's PhaseResult.to_json(): artifacts by relative path, metrics
    pod_id: str | None = None
    gpu: str | None = None
    output_dir: str | None = None  # where adapters and checkpoints land (a reattaching process needs it)
    costs: dict[str, float] = field(default_factory=dict)  # the cost ledger's parts: teacher, gpu, judge (USD)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def owner_gone(self) -> bool:
        """A job not ended whose process died: nothing follows it, its record stays as that process left it."""
        return not self.terminal and not self.owner_alive()

    def state_label(self) -> str:
        """The state as listings show it: ``training, owner gone`` rather than a ``training`` nobody runs."""
        return f"{self.state}, owner gone" if self.owner_gone else self.state

    def owner_alive(self) -> bool:
        """Whether the process that runs this job still exists (same host only)."""
        if self.host != socket.gethostname():
            return True  # cannot tell; assume alive rather than declare it dead
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class JobFolder:
    """One job's folder and its files."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, record: JobRecord, config: dict[str, Any], root: Path | None = None) -> JobFolder:
        folder = cls((root or jobs_root()) / record.id)
        folder.path.mkdir(parents=True, exist_ok=False)
        folder.write_json("config.json", config)
        folder.save_record(record)
        return folder

    @classmethod
    def open(cls, job_id: str, root: Path | None = None) -> JobFolder:
        path = (root or jobs_root()) / job_id
        if not (path / "job.json").is_file():
            known = ", ".join(r.id for r in list_jobs(root)[:5]) or "none yet"
            raise JobNotFoundError(f"no job {job_id!r} in {path.parent}; recent jobs: {known}")
        return cls(path)

    # ------------------------------------------------------------------ files
    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def outputs(self) -> Path:
        return self.path / "outputs"

    def write_json(self, name: str, data: Any) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.path / name)

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    def load_record(self) -> JobRecord:
        raw = self.read_json("job.json")
        known = {f for f in JobRecord.__dataclass_fields__}
        return JobRecord(**{k: v for k, v in raw.items() if k in known})

    def save_record(self, record: JobRecord) -> None:
        record.updated = time.time()
        self.write_json("job.json", asdict(record))

    def config(self) -> dict[str, Any]:
        return self.read_json("config.json")


def list_jobs(root: Path | None = None) -> list[JobRecord]:
    """Every job record, newest first; unreadable folders are skipped."""
    base = root or jobs_root()
    if not base.is_dir():
        return []
    records = []
    for path in base.iterdir():
        try:
            records.append(JobFolder(path).load_record())
        except (OSError, ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: r.created, reverse=True)
