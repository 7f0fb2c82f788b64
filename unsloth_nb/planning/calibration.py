"""Learning this machine's real training speed from the jobs it already ran.

The planner's speeds are rules of thumb (FLOPs for a GPU, one measured point for a
CPU) and a busy or unusual machine can be 2x off. Every finished job leaves the
truth in its folder: ``plan.json`` (what was estimated, for which model, tokens
per step and hardware) and ``events.jsonl`` (a ``metrics`` event per logged step,
with its time). From those this module derives, per job, the seconds per step and
the seconds outside training (start-up and wind-down), and compares them with
what the rules of thumb would have said for that job. The ratio of the two is the
correction the planner applies to a new job on the same hardware, taken from the
earlier job whose model size is nearest.

Observations are cached in ``<data root>/calibration.json`` (a finished job never
changes), so planning reads one small file plus the folders of jobs finished since.
Only jobs that trained on this machine count: a pod's start-up depends on RunPod.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "EstimateCheck",
    "Observation",
    "calibrate",
    "estimate_checks",
    "hardware_key",
    "observations",
]

CALIBRATION_FILE = "calibration.json"

#: How many of the newest job folders are looked at; older jobs say little about today's machine.
RECENT_JOBS = 40

#: Set to 0 to plan with the rules of thumb only (tests that pin figures, or a changed machine).
CALIBRATION_ENV = "UNSLOTH_NB_CALIBRATE"

#: A correction outside this range means the observation is broken (a job stopped at once,
#: a machine that slept); it is clamped rather than trusted.
FACTOR_RANGE = (0.1, 10.0)

#: Jobs within this log-distance in size of the nearest one count as "the same size" (x1.5).
SAME_SIZE = math.log(1.5)

#: The correction is the median over at most this many of the newest jobs of about the nearest size.
MEDIAN_OF = 5


@dataclass
class Observation:
    """What one finished local job measured, beside what the rules of thumb said for it."""

    job_id: str
    model: str
    key: str  # hardware_key of the machine it trained on
    params: float
    tokens_per_step: int
    steps: int
    step_seconds: float  # measured, between the first and the last logged step
    overhead_seconds: float  # measured: the whole job minus its training steps
    elapsed_seconds: float  # measured: created -> finished
    estimated_seconds: float | None  # what the plan said before the job ran
    device: str = "cpu"
    four_bit: bool = False
    cpu_count: int | None = None
    gpu_name: str = ""

    def priors(self) -> tuple[float, float]:
        """(seconds per step, seconds outside training) the rules of thumb give for this job today."""
        from unsloth_nb.planning.speed import prior_overhead_seconds, prior_step_seconds

        step = prior_step_seconds(self.params, self.tokens_per_step, self.device, self.four_bit, self.cpu_count, self.gpu_name)
        return step, prior_overhead_seconds(self.params)


@dataclass
class Calibration:
    """Corrections for one machine, to multiply the rules of thumb by."""

    step_factor: float
    overhead_factor: float
    based_on: Observation
    jobs: int  # how many observations this machine has
    used: int = 1  # how many of them (the newest of about the nearest size) the median is over

    def describe(self) -> str:
        seen = self.based_on
        return (
            f"calibrated from {self.used} of {self.jobs} earlier job(s) on this machine (nearest: {seen.model}, "
            f"{seen.step_seconds:.2f} s/step measured last)"
        )


@dataclass
class EstimateCheck:
    """One earlier job's estimated against its real elapsed time."""

    job_id: str
    model: str
    estimated_seconds: float
    elapsed_seconds: float

    @property
    def error(self) -> float:
        """Signed relative error of the estimate: +0.2 means it said 20 % too long."""
        return (self.estimated_seconds - self.elapsed_seconds) / self.elapsed_seconds


def hardware_key(plan_local: dict[str, Any] | Any) -> str:
    """A name for the hardware a local job trains on: device, model name and core count."""
    get = plan_local.get if isinstance(plan_local, dict) else lambda k, d=None: getattr(plan_local, k, d)
    device = get("device", "cpu")
    if device == "cuda":
        return f"cuda:{get('name', '')}"
    return f"cpu:{get('name', '')}:{get('cpu_count', '') or ''}"


def enabled() -> bool:
    return os.environ.get(CALIBRATION_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def observations(root: Path | None = None) -> list[Observation]:
    """Observations of the newest finished local jobs, newest first (cached per job)."""
    from unsloth_nb.jobrun.store import data_root

    base = root or data_root()
    jobs = base / "jobs"
    if not jobs.is_dir():
        return []
    cache_path = base / CALIBRATION_FILE
    cache = _read_cache(cache_path)
    folders = sorted((p for p in jobs.iterdir() if p.is_dir()), key=lambda p: p.name, reverse=True)[:RECENT_JOBS]
    found: list[Observation] = []
    changed = False
    for folder in folders:
        if folder.name in cache:
            raw = cache[folder.name]
            if raw is not None:
                try:
                    found.append(Observation(**{**raw, "model": _short_model(str(raw.get("model", "")))}))
                except TypeError:  # written by another version: look again
                    pass
                else:
                    continue
            else:
                continue
        outcome = _observe(folder)
        if outcome is _UNFINISHED:
            continue
        cache[folder.name] = asdict(outcome) if isinstance(outcome, Observation) else None
        changed = True
        if isinstance(outcome, Observation):
            found.append(outcome)
    if changed:
        _write_cache(cache_path, cache)
    return found


def calibrate(key: str, params: float, root: Path | None = None) -> Calibration | None:
    """The correction for a new job of ``params`` parameters on hardware ``key``, or None without history."""
    if not enabled():
        return None
    mine = [o for o in observations(root) if o.key == key]
    if not mine:
        return None
    distance = {id(o): abs(math.log(max(o.params, 1.0) / max(params, 1.0))) for o in mine}
    nearest = min(mine, key=lambda o: distance[id(o)])
    # The newest few jobs of about the nearest size: their median correction, so one run on a
    # machine that was briefly busy (or idle) does not swing the next estimate on its own.
    alike = [o for o in mine if distance[id(o)] <= distance[id(nearest)] + SAME_SIZE][:MEDIAN_OF]
    step_factors, overhead_factors = [], []
    for seen in alike:
        prior_step, prior_overhead = seen.priors()
        step_factors.append(seen.step_seconds / prior_step)
        overhead_factors.append(seen.overhead_seconds / prior_overhead)
    return Calibration(
        step_factor=_clamp(statistics.median(step_factors)),
        overhead_factor=_clamp(statistics.median(overhead_factors)),
        based_on=nearest,
        jobs=len(mine),
        used=len(alike),
    )


def estimate_checks(root: Path | None = None, limit: int = 5) -> list[EstimateCheck]:
    """The newest finished local jobs whose plan carried a time estimate, with the real time."""
    checks = [
        EstimateCheck(o.job_id, o.model, o.estimated_seconds, o.elapsed_seconds)
        for o in observations(root)
        if o.estimated_seconds
    ]
    return checks[:limit]


def describe_errors(checks: list[EstimateCheck]) -> str:
    """``+12 %, -8 %`` for the plan's one-line report; "" without checks."""
    return ", ".join(f"{check.error:+.0%}" for check in checks)


# ---------------------------------------------------------------------- reading a job folder
_UNFINISHED = object()


def _trained_here(placement: Any) -> bool:
    """Whether a job of this placement trained in this machine's process (a pod's speed says nothing of ours)."""
    from unsloth_nb.backends.registry import backend_names, get_backend

    return isinstance(placement, str) and placement in backend_names() and get_backend(placement).in_process


def _observe(folder: Path) -> Observation | object | None:
    """An Observation, None when the job says nothing useful, or _UNFINISHED to look again later."""
    try:
        record = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _UNFINISHED
    if record.get("state") not in ("succeeded", "failed", "cancelled"):
        return _UNFINISHED
    if record.get("state") != "succeeded" or not _trained_here(record.get("placement")) or not record.get("finished"):
        return None
    try:
        plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    steps = _step_times(folder / "events.jsonl")
    if len(steps) < 2 or steps[-1][0] <= steps[0][0]:
        return None
    (first_step, first_time), (last_step, last_time) = steps[0], steps[-1]
    step_seconds = (last_time - first_time) / (last_step - first_step)
    elapsed = float(record["finished"]) - float(record["created"])
    # The export after training (GGUF, merges) has its own rule of thumb in the plan: leave it out of the start-up's.
    overhead = max(elapsed - last_step * step_seconds - float(plan.get("export_seconds") or 0.0), 1.0)
    params = float((plan.get("size") or {}).get("active_params") or (plan.get("size") or {}).get("params") or 0)
    tokens_per_step = int(plan.get("tokens_per_step") or 0)
    local = plan.get("local") or {}
    if params <= 0 or tokens_per_step <= 0 or step_seconds <= 0:
        return None
    device = str(plan.get("device") or local.get("device") or "cpu")
    return Observation(
        job_id=folder.name,
        model=_short_model(str(plan.get("model") or record.get("model") or "")),
        key=hardware_key(local),
        params=params,
        tokens_per_step=tokens_per_step,
        steps=int(last_step),
        step_seconds=round(step_seconds, 4),
        overhead_seconds=round(overhead, 2),
        elapsed_seconds=round(elapsed, 2),
        estimated_seconds=plan.get("estimated_seconds"),
        device=device,
        four_bit="4-bit" in str(plan.get("method") or ""),
        cpu_count=local.get("cpu_count"),
        gpu_name=str(local.get("name") or "") if device == "cuda" else "",
    )


def _short_model(name: str) -> str:
    """A Hub id as is; a local folder by its last part (the plan line stays short)."""
    return Path(name).name if name.startswith(("/", "~", ".")) else name


def _step_times(path: Path) -> list[tuple[int, float]]:
    """(step, time) of each metrics event with a training loss, by step (a resumed job's repeats: the last)."""
    found: dict[int, float] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if '"metrics"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                data = event.get("data") or {}
                if event.get("kind") == "metrics" and data.get("loss") is not None and data.get("step"):
                    found[int(data["step"])] = float(event["time"])
    except OSError:
        return []
    return sorted(found.items())


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data root only costs the cache


def _clamp(factor: float) -> float:
    low, high = FACTOR_RANGE
    return min(max(factor, low), high)
