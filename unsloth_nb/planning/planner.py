"""Decide where a job runs and what it will cost, before anything heavy happens.

``plan(config)`` answers, in order: how many parameters the model has (from a
``config.json`` on disk or in the Hugging Face cache, else from its name), how
much GPU memory LoRA/QLoRA needs for it (Unsloth's published VRAM table), where
it should run (the local GPU, this CPU for very small models, or a RunPod pod),
which RunPod GPUs to try and in what order, and a rough time and dollar figure.

It never downloads anything and never imports torch: ``unsloth-nb plan`` has to
answer in a second on a laptop with no GPU, no token and no network. The local
GPU is found with ``nvidia-smi``. Every estimate here is a rule of thumb whose
inputs are documented next to it; the plan says "rough" where it is one.

The decision is made here; its inputs and its display have modules of their own:
:mod:`unsloth_nb.planning.hardware` (this machine's GPU or CPU), :mod:`unsloth_nb.planning.model_size`
(the parameter count), :mod:`unsloth_nb.planning.memory` (the memory that count needs) and
:mod:`unsloth_nb.planning.plan_text` (the plan as text). Their public names are re-exported
here, so ``from unsloth_nb.planning.planner import ...`` works for them as before.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.backends.base import PlacementInputs, PriceRequest
from unsloth_nb.backends.registry import backend_names, get_backend
from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary
from unsloth_nb.errors import ConfigError, PlanError, set_field
from unsloth_nb.planning.calibration import hardware_key
from unsloth_nb.planning.durations import rough_duration
from unsloth_nb.planning.exports import PlannedOutput, download_seconds, export_seconds, planned_outputs
from unsloth_nb.planning.gpu_catalog import (
    GPU_CATALOG,
    GpuOption,
    all_known_gpus,
)
from unsloth_nb.planning.hardware import LOCAL_DEVICE_ENV, LocalHardware, detect_local_hardware
from unsloth_nb.planning.memory import (
    CONTEXT_GB_PER_1K_TOKENS_AT_1B,
    CPU_MEMORY_FACTOR,
    GPU_MEMORY_USABLE,
    SMALL_MODEL_FLOOR_GB,
    TABLE_TOKENS_IN_FLIGHT,
    UNSLOTH_VRAM_TABLE,
    cpu_memory_needed_gb,
    fits,
    memory_needed_gb,
)
from unsloth_nb.planning.model_size import (
    KNOWN_FAMILIES,
    MOE_NAME_SHARE,
    ModelSize,
    _hub_cache_config,
    estimate_model_size,
    hub_cache_dir,
)
from unsloth_nb.planning.pod_size import POD_CHECKPOINT_EVERY_S, PodResources, checkpoint_every, pod_resources
from unsloth_nb.planning.speed import prior_step_seconds
from unsloth_nb.planning.spot import spot_note
from unsloth_nb.planning.unwatched import unwatched_note

# Plan, plan and check_model_source are made here; the rest is re-exported from gpu_catalog, hardware,
# model_size, memory and plan_text so that ``from unsloth_nb.planning.planner import ...`` keeps working.
__all__ = [
    "CONTEXT_GB_PER_1K_TOKENS_AT_1B",
    "CPU_MEMORY_FACTOR",
    "GPU_MEMORY_USABLE",
    "KNOWN_FAMILIES",
    "LOCAL_DEVICE_ENV",
    "MOE_NAME_SHARE",
    "SMALL_MODEL_FLOOR_GB",
    "TABLE_TOKENS_IN_FLIGHT",
    "UNSLOTH_VRAM_TABLE",
    "GpuOption",
    "LocalHardware",
    "ModelSize",
    "Plan",
    "check_model_source",
    "cpu_memory_needed_gb",
    "detect_local_hardware",
    "estimate_model_size",
    "fits",
    "hub_cache_dir",
    "memory_needed_gb",
    "plan",
]

# The rules of thumb for speed are in planning/speed.py (calibration corrects them); the checkpoint interval of a
# pod job in planning/pod_size.py.


# ---------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """Everything decided before a job starts; the controller acts on it, the UI shows it."""

    placement: str  # a name in unsloth_nb.backends.registry ("local", "runpod", ...)
    device: str  # "cuda" | "cpu" (a RunPod pod is "cuda")
    model: str
    size: ModelSize
    method: str  # "QLoRA (4-bit)" | "LoRA (16-bit)"
    memory_needed_gb: float
    local: LocalHardware
    gpu_candidates: list[GpuOption]  # RunPod GPUs in the order they are tried; empty when local
    total_steps: int | None
    estimated_seconds: float | None  # whole run: start-up + training + wind-down
    usd_per_hour: float | None  # RunPod only: the first candidate in the chosen cloud
    estimated_cost_usd: float | None
    reasons: list[str]
    warnings: list[str]
    cloud_type: str | None = None  # a pod's cloud (SECURE, COMMUNITY, ALL); None where the price has no cloud
    rate_label: str | None = None  # the one rate a placement pays, by name ("serverless flex"), instead of a cloud
    startup_seconds: float | None = None
    tokens_per_second: float | None = None
    tokens_per_step: int | None = None
    pod: PodResources | None = None  # a rented machine only: container disk, vCPUs and RAM it is created with
    training_seconds: float | None = None  # the steps alone, without start-up
    calibration: str | None = None  # where the speed came from, when earlier jobs corrected it
    estimate_errors: str | None = None  # how far the last jobs' estimates were from their real time
    needs_secrets: list[str] = dataclasses.field(default_factory=list)  # "HF_TOKEN: why", one per key
    gpu_choice: str | None = None  # RunPod: why the first card, and the runner-up
    #: What the job writes (adapter, merged models, GGUF files, Modelfile), sizes and export times; a rented
    #: machine's outputs all come down to this machine (``--dry-run`` lists each download from here).
    outputs: list[PlannedOutput] = dataclasses.field(default_factory=list)
    export_seconds: float | None = None  # merges, GGUF conversion and quantising after training (in estimated_seconds)
    download_seconds: float | None = None  # a rented machine: bringing the exports down, billed (in estimated_seconds)

    def time_text(self, detail: bool = False) -> str:
        """The estimate as one phrase; the panel's summary and the full plan both use it, so they agree."""
        if self.estimated_seconds is None:
            return "not estimated"
        text = f"~{rough_duration(self.estimated_seconds)}"
        if self.training_seconds is not None and self.startup_seconds is not None:
            text += f" (~{rough_duration(self.startup_seconds)} start-up + ~{rough_duration(self.training_seconds)} training"
            if self.export_seconds:
                text += f" + ~{rough_duration(self.export_seconds)} export"
            if self.download_seconds:
                text += f" + ~{rough_duration(self.download_seconds)} download"
            text += f", ~{self.tokens_per_second or 0:,.0f} tokens/s)" if detail else ")"
        return text + (f"; {self.calibration}" if detail and self.calibration else "; rough" if detail else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and the job folder."""
        return dataclasses.asdict(self)

    @property
    def gpu(self) -> GpuOption | None:
        return self.gpu_candidates[0] if self.gpu_candidates else None


def default_save_steps(plan: Plan) -> int | None:
    """A checkpoint interval for a pod job that set none: about every POD_CHECKPOINT_EVERY_S of training.

    None where nothing is rented (a local crash keeps the disk), when the speed is unknown, and
    when the whole run is shorter than one interval (a lost pod then costs little).
    """
    if not get_backend(plan.placement).rents:
        return None
    return checkpoint_every(plan.tokens_per_step, plan.tokens_per_second, plan.total_steps)


def plan(
    config: TrainConfig,
    dataset: DatasetSummary | None = None,
    hardware: LocalHardware | None = None,
    prices: list[GpuOption] | None = None,
) -> Plan:
    """Size the model, choose where it trains and on which GPUs, and estimate time and cost.

    ``hardware`` defaults to :func:`detect_local_hardware`; ``prices`` (live
    RunPod prices and stock) replaces the static catalogue. Raises PlanError
    when the job cannot run as configured, with the field to change.
    """
    name = config.model.name.strip()
    if not name:
        raise ConfigError("model.name", "a model is required, e.g. unsloth/Llama-3.2-1B-Instruct")
    size = estimate_model_size(name, config.model.revision)
    _check_context_length(config, size)
    local = hardware if hardware is not None else detect_local_hardware()
    catalogue = list(prices) if prices is not None else list(GPU_CATALOG)
    train = config.train
    gpu_need = memory_needed_gb(size.params, config.model.load_in_4bit, train.max_seq_length, train.batch_size)
    cpu_need = cpu_memory_needed_gb(size.params, train.max_seq_length, train.batch_size)
    reasons: list[str] = []
    warnings: list[str] = []
    user_gpus = _resolve_gpu_ids(config.runpod.gpus, catalogue)

    placement, device = _place(PlacementInputs(config, size, local, gpu_need, cpu_need, reasons, warnings))
    backend = get_backend(placement)
    four_bit = config.model.load_in_4bit and device == "cuda"
    method = "QLoRA (4-bit)" if four_bit else "LoRA (16-bit)"
    if config.model.load_in_4bit and device == "cpu":
        reasons.append("4-bit loading needs a CUDA GPU; on the CPU the model loads in 16 bit.")
    need = gpu_need if device == "cuda" else cpu_need

    steps, tokens_per_step = _steps(config, dataset, reasons)
    startup = backend.startup_seconds(size.params * 2 / 1e9)
    outputs = planned_outputs(config, size, four_bit=four_bit)
    exporting = export_seconds(outputs)
    # What a machine elsewhere wrote comes down here before it is let go (billed); the adapter is in its start-up rule.
    downloading = 0.0 if backend.in_process else download_seconds(outputs)
    params = size.active_params or size.params

    def gpu_step_seconds(gpu_type_id: str) -> float:
        return prior_step_seconds(params, tokens_per_step, "cuda", config.model.load_in_4bit, None, gpu_type_id)

    pricing = backend.price(
        PriceRequest(
            config,
            size,
            gpu_need,
            catalogue,
            user_gpus,
            steps,
            tokens_per_step,
            startup + exporting + downloading,  # GPUs are ranked by the whole paid time
            gpu_step_seconds,
            reasons,
            warnings,
        )
    )
    candidates, cloud, gpu_choice = pricing.candidates, pricing.cloud, pricing.gpu_choice
    for note, is_warning in backend.plan_notes(config):
        (warnings if is_warning else reasons).append(note)
    if dataset is not None and dataset.longest_tokens > train.max_seq_length:
        warnings.append(
            f"The longest row has {dataset.longest_tokens:,} tokens, more than train.max_seq_length "
            f"{train.max_seq_length:,}; longer rows are truncated."
        )
    gpu_name = candidates[0].gpu_type_id if candidates else local.name
    step_seconds = prior_step_seconds(
        size.active_params or size.params, tokens_per_step, device, four_bit, local.cpu_count, gpu_name
    )
    calibrated = None
    if backend.in_process:  # calibration learns this machine's speed from its own finished jobs
        from unsloth_nb.planning.calibration import calibrate

        calibrated = calibrate(hardware_key(local), size.active_params or size.params)
        if calibrated is not None:
            step_seconds *= calibrated.step_factor
            startup *= calibrated.overhead_factor
    speed = tokens_per_step / step_seconds
    training = steps * step_seconds if steps is not None else None
    seconds = startup + training + exporting + downloading if training is not None else None

    usd_per_hour, cost = pricing.estimate(seconds, warnings)
    _check_limits(config, backend.rents, device, seconds, cost, warnings)
    if backend.rents and not pricing.rate_label:  # a pod's fate; a per-worker rate (serverless) says its own in its notes
        note, is_warning = unwatched_note(config, usd_per_hour)
        (warnings if is_warning else reasons).append(note)
    if backend.rents and config.runpod.interruptible:
        per_step = tokens_per_step / speed if tokens_per_step and speed else None
        reasons.append(
            spot_note(config, candidates[0] if candidates else None, usd_per_hour, per_step, startup, POD_CHECKPOINT_EVERY_S)
        )

    result = Plan(
        placement=placement,
        device=device,
        model=name,
        size=size,
        method=method,
        memory_needed_gb=need,
        local=local,
        gpu_candidates=candidates,
        total_steps=steps,
        estimated_seconds=round(seconds) if seconds is not None else None,
        usd_per_hour=usd_per_hour,
        estimated_cost_usd=cost,
        reasons=reasons,
        warnings=warnings,
        cloud_type=None if pricing.rate_label else cloud,
        rate_label=pricing.rate_label,
        startup_seconds=round(startup),
        tokens_per_second=round(speed, 1),
        tokens_per_step=tokens_per_step,
        training_seconds=round(training) if training is not None else None,
        calibration=calibrated.describe() if calibrated is not None else None,
        estimate_errors=_estimate_errors() if backend.in_process else None,
        needs_secrets=secrets_needed(config, placement),
        gpu_choice=gpu_choice,
        outputs=outputs,
        export_seconds=round(exporting) if exporting else None,
        download_seconds=round(downloading) if downloading else None,
    )
    if backend.rents:  # a rented machine is created with a disk, vCPUs and RAM sized for this job
        save_steps = config.train.save_steps or default_save_steps(result)
        result.pod = pod_resources(config, size, total_steps=steps, save_steps=save_steps)
    return result


def _check_context_length(config: TrainConfig, size: ModelSize) -> None:
    """Refuse a max_seq_length beyond what the model's config.json says it can attend to.

    Without this the mistake shows up minutes later, after the weights are read, or
    silently trains on positions the model never saw. Only a count from a real
    config.json is trusted; a size read from the name says nothing about context.
    """
    limit = size.max_positions
    wanted = config.train.max_seq_length
    if limit is None or wanted <= limit:
        return
    raise ConfigError(
        "train.max_seq_length",
        f"{wanted:,} tokens is more than {config.model.name} can take: its max_position_embeddings is {limit:,} "
        f"({size.source}). {set_field('train.max_seq_length', f'{limit:,} or less')}.",
    )


#: Environment switches huggingface_hub and transformers read to stay offline.
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

#: How a model name written as a path starts; anything else shaped like owner/name is a Hub id.
_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def hub_offline() -> bool:
    """True when downloads from the Hub are switched off, as huggingface_hub decides it."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_ENV)


def check_model_source(config: TrainConfig, placement: str | None) -> None:
    """Refuse a model that cannot be loaded where the job would run, before anything starts.

    Catches what would otherwise fail only after a job (or a pod) has started: a
    local path that does not exist, a file where a folder is needed, and a Hub id
    that is neither cached nor downloadable because this machine is offline. A Hub
    id is not looked up online: planning never touches the network. A path that is
    missing here may still exist where the job runs (a RunPod network volume), so it is
    let through when the placement says so. ``placement=None`` (the job could not be
    placed) applies only the checks that hold wherever it runs.
    """
    backend = get_backend(placement) if placement is not None else None
    name = config.model.name.strip()
    path = Path(name).expanduser()
    looks_like_path = name.startswith(_PATH_PREFIXES) or path.suffix.lower() in (".gguf", ".safetensors", ".bin", ".json")
    if path.is_dir():
        return
    if path.is_file():
        raise ConfigError(
            "model.name",
            f"{name} is a file; give the model's folder (the one that holds config.json and the weights) or a Hub id",
        )
    if looks_like_path:
        if backend is not None and backend.may_have_model_path(config):
            return
        raise ConfigError(
            "model.name",
            f"there is no model folder at {name}. Give a folder that holds config.json, or a Hub id such as "
            "unsloth/Llama-3.2-1B-Instruct.",
        )
    if backend is not None and backend.in_process and hub_offline() and _hub_cache_config(name, config.model.revision) is None:
        switches = ", ".join(f"{var}={os.environ[var]}" for var in OFFLINE_ENV if os.environ.get(var))
        raise ConfigError(
            "model.name",
            f"{name!r} is not in the Hugging Face cache ({hub_cache_dir()}) and downloads are switched off "
            f"({switches}). Check the id for typos, download it once with network access (hf download {name}), "
            "or point model.name at a local folder.",
        )


def _place(inputs: PlacementInputs) -> tuple[str, str]:
    """(placement, device): the placement the config names, else the first backend that takes the job."""
    chosen = inputs.config.placement
    if chosen != "auto":
        device = get_backend(chosen).place(inputs, chosen=True)
        if device is None:
            raise PlanError(f"placement: {chosen} cannot take this job; " + " ".join(inputs.reasons[-1:]))
        return chosen, device
    for name in backend_names():
        device = get_backend(name).place(inputs, chosen=False)
        if device is not None:
            return name, device
    raise PlanError("no placement can take this job: " + " ".join(inputs.reasons))


def _resolve_gpu_ids(requested: list[str], catalogue: list[GpuOption]) -> list[GpuOption]:
    """The user's runpod.gpus as options, in their order; an unknown id is an error with suggestions."""
    known = {g.gpu_type_id: g for g in all_known_gpus()}
    known.update({g.gpu_type_id: g for g in catalogue})
    by_key: dict[str, GpuOption] = {}
    for option in known.values():
        by_key.setdefault(_squash(option.gpu_type_id), option)
    for option in known.values():
        by_key.setdefault(_squash(option.display_name), option)
    chosen: list[GpuOption] = []
    for index, text in enumerate(requested):
        found = known.get(text) or by_key.get(_squash(text))
        if found is None:
            raise PlanError(f"runpod.gpus[{index}]: unknown GPU type {text!r}. {_suggest(text, list(known.values()))}")
        if found not in chosen:
            chosen.append(found)
    return chosen


def _suggest(text: str, options: list[GpuOption]) -> str:
    names = {o.gpu_type_id: o.gpu_type_id for o in options} | {o.display_name: o.gpu_type_id for o in options}
    close = difflib.get_close_matches(text, list(names), n=5, cutoff=0.5)
    wanted = _squash(text)
    if wanted:
        close += [n for n in names if wanted in _squash(n)]
    ids = list(dict.fromkeys(names[n] for n in close))[:5]
    if ids:
        return "Did you mean: " + ", ".join(repr(i) for i in ids) + "? Use RunPod's exact gpuTypeId."
    return "Use RunPod's exact gpuTypeId, e.g. 'NVIDIA GeForce RTX 4090' or 'NVIDIA A100 80GB PCIe' (unsloth-nb runpod gpus lists them)."


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _steps(config: TrainConfig, dataset: DatasetSummary | None, reasons: list[str]) -> tuple[int | None, int]:
    """(optimizer steps, tokens per step), counting steps as transformers' Trainer does."""
    train = config.train
    rows = dataset.rows if dataset is not None else 0
    per_row = train.max_seq_length / 2
    if dataset is not None and dataset.tokens > 0 and rows > 0:
        per_row = min(dataset.tokens / rows, train.max_seq_length)
    tokens_per_step = max(1, round(per_row * train.batch_size * train.grad_accum))
    if train.max_steps is not None:
        reasons.append(f"Steps: train.max_steps = {train.max_steps:,}.")
        return train.max_steps, tokens_per_step
    if rows <= 0:
        reasons.append("Steps: unknown without the dataset (or train.max_steps), so time and cost are not estimated.")
        return None, tokens_per_step
    batches = math.ceil(rows / train.batch_size)
    per_epoch = max(math.ceil(batches / train.grad_accum), 1)
    steps = math.ceil(train.epochs * per_epoch)
    reasons.append(
        f"Steps: {rows:,} rows / (batch {train.batch_size} x accumulation {train.grad_accum}) x {train.epochs:g} "
        f"epoch(s) = {steps:,}."
    )
    return steps, tokens_per_step


def _estimate_errors() -> str | None:
    """``+12 %, -8 % (last 2 jobs here)``: how the newest local jobs' estimates compared with their real time."""
    from unsloth_nb.planning.calibration import describe_errors, enabled, estimate_checks

    if not enabled():
        return None
    checks = estimate_checks(limit=3)
    if not checks:
        return None
    return f"{describe_errors(checks)} (estimate vs real time of the last {len(checks)} job(s) here)"


#: Hub model ids that need an accepted licence and HF_TOKEN to download (gated on the Hub).
#: Matched on the lower-cased id; unsloth's own mirrors of these models are not gated.
GATED_MODEL_PREFIXES = (
    "meta-llama/",
    "mistralai/",
    "google/gemma",
    "google/medgemma",
    "bigcode/starcoder2",
    "tiiuae/falcon-180b",
    "cohereforai/",
)


def secrets_needed(config: TrainConfig, placement: str) -> list[str]:
    """Which keys this job needs and why, as ``HF_TOKEN: ...`` lines; the plan shows them before anything runs."""
    needed = [f"{need.name}: {need.purpose}." for need in get_backend(placement).secrets(config)]
    name = config.model.name.strip().lower()
    reasons = []
    if config.hub.repo_id:
        from unsloth_nb.config.export import push_repo_ids

        pushes = ", ".join(f"{target} to {repo}" for target, repo in push_repo_ids(config.hub).items())
        reasons.append(f"hub.repo_id pushes {pushes} on the Hub")
    if name.startswith(GATED_MODEL_PREFIXES):
        reasons.append(f"{config.model.name} is gated on the Hub (accept its licence there first)")
    if reasons:
        needed.append("HF_TOKEN: " + "; ".join(reasons) + ".")
    return needed


def _check_limits(
    config: TrainConfig, rents: bool, device: str, seconds: float | None, cost: float | None, warnings: list[str]
) -> None:
    limits = config.runpod
    if rents and cost is not None and limits.max_cost_usd is not None and cost > limits.max_cost_usd:
        warnings.append(
            f"The estimated ${cost:.2f} is more than runpod.max_cost_usd ${limits.max_cost_usd:.2f}; the pod will be "
            "stopped at the cap (keeping what was trained). Raise the cap or train fewer steps."
        )
    if rents and seconds is not None and seconds > limits.max_runtime:
        warnings.append(
            f"The estimated {rough_duration(seconds)} is longer than runpod.max_runtime {rough_duration(limits.max_runtime)}; "
            "the pod will be stopped at the limit. Raise it or train fewer steps."
        )
    if not rents and device == "cpu" and seconds is not None and seconds > 2 * 3600:
        warnings.append(f"On this CPU the job takes roughly {rough_duration(seconds)}; placement: runpod would be faster.")
