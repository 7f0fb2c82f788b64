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
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import json
import math
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.config import TrainConfig
from unsloth_nb.data import DatasetSummary
from unsloth_nb.errors import ConfigError, PlanError
from unsloth_nb.gpu_catalog import (
    DEFAULT_TRAINING_TFLOPS,
    GPU_CATALOG,
    GpuOption,
    all_known_gpus,
    size_class,
    training_tflops,
)

__all__ = [
    "GpuOption",
    "LocalHardware",
    "ModelSize",
    "Plan",
    "check_model_source",
    "detect_local_hardware",
    "estimate_model_size",
    "format_plan",
    "memory_needed_gb",
    "plan",
]

# ---------------------------------------------------------------------- rules of thumb

#: A GPU "fits" when the need is at most this share of its (free) memory; the
#: rest is left for the CUDA context, fragmentation and the odd long batch.
GPU_MEMORY_USABLE = 0.9

#: Models up to this size train on a CPU in reasonable time when placement is auto
#: (SmolLM2-135M at ~100-300 tokens/s on 2 cores; 0.5B is ~4x slower).
CPU_AUTO_MAX_PARAMS = 0.6e9

#: Above this, ``placement: local`` on a CPU-only machine is refused: days per epoch.
CPU_FORCED_MAX_PARAMS = 3e9

#: RAM for LoRA on CPU relative to the GPU 16-bit figure: the plain PyTorch CPU path
#: keeps more in fp32 (SmolLM2-135M peaked at 1.3-1.9 GB RSS, training.md §2.4).
CPU_MEMORY_FACTOR = 1.5

#: Unsloth's minimum VRAM for fine-tuning, (billions of params, QLoRA 4-bit GB, LoRA 16-bit GB),
#: from the Unsloth Requirements page. "These numbers are the absolute minimum."
UNSLOTH_VRAM_TABLE: tuple[tuple[float, float, float], ...] = (
    (3, 3.5, 8),
    (7, 5, 19),
    (8, 6, 22),
    (9, 6.5, 24),
    (11, 7.5, 29),
    (14, 8.5, 33),
    (27, 22, 64),
    (32, 26, 76),
    (40, 30, 96),
    (70, 41, 164),
    (81, 48, 192),
    (90, 53, 212),
    (405, 237, 950),
)

#: Below the table's first row the need is a straight line from this floor at zero
#: parameters (CUDA context, allocator, tokenizer, LoRA state) to the 3B row.
SMALL_MODEL_FLOOR_GB = 1.0

#: Tokens in flight (batch x sequence) the table is taken to assume: Unsloth's
#: notebook defaults, batch 2 x 2048. Fewer tokens never lowers the minimum.
TABLE_TOKENS_IN_FLIGHT = 2 * 2048

#: Extra GB per 1,000 tokens in flight beyond that, at 1B params, growing with the
#: cube root of the size. Fitted to Unsloth's long-context claims on an 80 GB card
#: (Llama 3.1 8B ~342K tokens: ~0.22 GB/1K; Llama 3.3 70B ~89K: ~0.44 GB/1K).
CONTEXT_GB_PER_1K_TOKENS_AT_1B = 0.11

#: Training FLOPs per parameter per token: forward 2, recomputation under
#: gradient checkpointing 2, backward through frozen weights 2 (LoRA's own
#: weight gradients are negligible).
FLOPS_PER_PARAM_PER_TOKEN = 6.0

#: 4-bit weights are dequantised on the fly: QLoRA runs at about this share of LoRA speed.
QLORA_SPEED_FACTOR = 0.8

#: Small models are bound by kernel launches, not FLOPs; no GPU estimate goes above this.
GPU_MAX_TOKENS_PER_SECOND = 30_000.0

#: CPU: ~200 tokens/s for a 135M model on 2 cores (training.md §2.4), scaled inversely
#: with params and linearly with cores up to 16 (memory bandwidth stops it after that).
CPU_TOKENS_PER_SECOND_135M_2_CORES = 200.0

#: Start-up before the first step and wind-down after the last, in seconds.
#: Local: imports and model load (~100 MB/s from disk or the Hub, 16-bit weights).
#: RunPod: pod scheduled and image pulled (3-5 min), worker installs its packages,
#: then the model downloads at ~500 MB/s; at the end the adapter is saved and fetched.
LOCAL_STARTUP_S = 20.0
LOCAL_LOAD_S_PER_GB = 10.0
POD_START_S = 240.0
POD_SETUP_S = 120.0
POD_DOWNLOAD_S_PER_GB = 2.0
POD_FINISH_S = 60.0


# ---------------------------------------------------------------------- local hardware
@dataclass
class LocalHardware:
    """The accelerator (or CPU) this process would train on.

    For ``cuda`` the memory figures are the first GPU's; for ``cpu`` they are RAM.
    """

    device: str  # "cuda" | "cpu"
    name: str
    memory_gb: float
    free_memory_gb: float | None = None
    ram_gb: float | None = None
    cpu_count: int | None = None

    def describe(self) -> str:
        free = f", {self.free_memory_gb:.1f} GB free" if self.free_memory_gb is not None else ""
        if self.device == "cuda":
            return f"GPU {self.name} ({self.memory_gb:.1f} GB{free})"
        cores = f"{self.cpu_count} cores, " if self.cpu_count else ""
        return f"CPU only: {self.name} ({cores}{self.memory_gb:.1f} GB RAM{free})"


#: Set to ``cpu`` to plan as if this machine had no GPU (tests, or keeping the GPU free).
LOCAL_DEVICE_ENV = "UNSLOTH_NB_LOCAL_DEVICE"


def detect_local_hardware() -> LocalHardware:
    """The first NVIDIA GPU per ``nvidia-smi``, else this CPU and its RAM.

    Cached per value of ``UNSLOTH_NB_LOCAL_DEVICE``; call ``detect_local_hardware.cache_clear()``
    to look again (free memory changes as other processes come and go).
    """
    override = os.environ.get(LOCAL_DEVICE_ENV, "").strip().lower()
    if override not in ("", "auto", "cpu"):
        raise PlanError(f"{LOCAL_DEVICE_ENV}={override!r} is not understood; set it to cpu (plan without the GPU) or unset it")
    return _detect(override == "cpu", os.environ.get("CUDA_VISIBLE_DEVICES"))


@functools.lru_cache(maxsize=4)
def _detect(force_cpu: bool, visible_devices: str | None) -> LocalHardware:
    ram_total, ram_free = _ram_gb()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    first_visible = visible_devices.split(",")[0].strip() if visible_devices is not None else None
    # CUDA_VISIBLE_DEVICES="" or "-1" hides every GPU from the training process, so plan for the CPU.
    if not force_cpu and first_visible not in ("", "-1"):
        gpu = _nvidia_smi(first_visible)
        if gpu is not None:
            name, total, free = gpu
            return LocalHardware("cuda", name, total, free, ram_gb=ram_total, cpu_count=cores)
    return LocalHardware("cpu", _cpu_name(), ram_total, ram_free, ram_gb=ram_total, cpu_count=cores)


detect_local_hardware.cache_clear = _detect.cache_clear  # type: ignore[attr-defined]


def _nvidia_smi(device: str | None = None) -> tuple[str, float, float | None] | None:
    """(name, total GB, free GB) of the first visible GPU, or None when there is no usable NVIDIA GPU.

    ``nvidia-smi`` reports MiB; dividing by 1024 gives the "24 GB" a 4090 is sold as.
    """
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    select = ["-i", device] if device else []
    try:
        out = subprocess.run(
            [binary, *select, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3:
            continue
        try:
            total_mib = float(parts[1])
        except ValueError:
            continue
        try:
            free: float | None = round(float(parts[2]) / 1024, 2)
        except ValueError:
            free = None
        return parts[0], round(total_mib / 1024, 2), free
    return None


def _ram_gb() -> tuple[float, float | None]:
    """(total, available) RAM in GB from /proc/meminfo, else from sysconf."""
    try:
        info: dict[str, float] = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            fields = rest.split()
            if fields:
                info[key] = float(fields[0]) / (1024 * 1024)  # kB -> GB
        if "MemTotal" in info:
            return round(info["MemTotal"], 2), (round(info["MemAvailable"], 2) if "MemAvailable" in info else None)
    except (OSError, ValueError):
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        total = page * os.sysconf("SC_PHYS_PAGES") / 1024**3
        try:
            available: float | None = round(page * os.sysconf("SC_AVPHYS_PAGES") / 1024**3, 2)
        except (ValueError, OSError):
            available = None
        return round(total, 2), available
    except (ValueError, OSError, AttributeError):
        return 0.0, None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


# ---------------------------------------------------------------------- model size
@dataclass
class ModelSize:
    """How many parameters a model has, and how we know."""

    params: int
    source: str  # e.g. "config.json in /models/x", "model name 'Llama-3.1-8B'"
    exact: bool = False
    active_params: int | None = None  # mixture-of-experts: parameters used per token
    model_type: str | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    vocab_size: int | None = None
    max_positions: int | None = None  # max_position_embeddings from config.json: the longest sequence it attends to

    @property
    def billions(self) -> float:
        return self.params / 1e9

    def describe(self) -> str:
        active = f", {_human_params(self.active_params)} active" if self.active_params else ""
        approx = "" if self.exact else "~"
        return f"{approx}{_human_params(self.params)} parameters{active} ({self.source})"


def estimate_model_size(name_or_path: str, revision: str | None = None) -> ModelSize:
    """Count parameters without loading weights or contacting the Hub.

    Tries, in order: a local folder's ``config.json`` (or an adapter folder's base
    model), the Hugging Face cache, the size in the name (``8B``, ``0.5B``,
    ``135M``, ``8x7B``, ``30B-A3B``), a few well-known names without a size.
    """
    text = name_or_path.strip()
    if not text:
        raise PlanError("the model size could not be determined: no model name was given (set model.name)")
    path = Path(text).expanduser()
    if path.is_file() and path.name == "config.json":
        path = path.parent
    explicit_path = text.startswith((".", "/", "~")) or path.is_dir()
    unusable: PlanError | None = None
    try:
        if path.is_dir():
            size = _size_from_folder(path, revision)
            if size is not None:
                return size
        elif not explicit_path:
            cached = _hub_cache_config(text, revision)
            if cached is not None:
                config, where = cached
                return _size_from_config(config, f"Hugging Face cache (config.json, {where})")
    except PlanError as exc:
        unusable = exc  # a config.json we cannot use: the name may still tell
    from_name = _size_from_name(path.name if path.is_dir() else text)
    if from_name is not None:
        if unusable is not None:
            from_name.source += " (config.json was not usable)"
        return from_name
    if unusable is not None:
        raise unusable
    if path.is_dir():
        where = f"the folder {path} has no config.json"
    elif explicit_path:
        where = f"there is no folder {path}"
    else:
        where = f"{text!r} is not a local folder and is not in the Hugging Face cache ({hub_cache_dir()})"
    raise PlanError(
        f"the model size could not be determined: {where}, and its name carries no size. "
        "Point model.name at a local folder with config.json, download the model's config once "
        "(hf download <id> config.json), or use a name with the size such as unsloth/Llama-3.1-8B-Instruct."
    )


def _size_from_folder(path: Path, revision: str | None) -> ModelSize | None:
    config_file = path / "config.json"
    if config_file.is_file():
        return _size_from_config(_read_json(config_file), f"config.json in {path}")
    adapter = path / "adapter_config.json"
    if adapter.is_file():
        base = _read_json(adapter).get("base_model_name_or_path")
        if isinstance(base, str) and base.strip() and Path(base).expanduser().resolve() != path.resolve():
            size = estimate_model_size(base, revision)
            size.source = f"base model {base} of the adapter in {path}: {size.source}"
            return size
    return None


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{file} could not be read as JSON ({exc}); fix or re-download it") from None
    if not isinstance(data, dict):
        raise PlanError(f"{file} is not a JSON object; fix or re-download it")
    return data


def hub_cache_dir() -> Path:
    """The folder huggingface_hub caches models in, by the same environment variables it reads."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _hub_cache_config(repo_id: str, revision: str | None) -> tuple[dict[str, Any], str] | None:
    """(config, description) for a cached ``repo_id``: the revision asked for, else main, else the newest."""
    repo = hub_cache_dir() / ("models--" + repo_id.strip("/").replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    wanted = revision or "main"
    ref = repo / "refs" / wanted
    commit = ref.read_text().strip() if ref.is_file() else wanted
    chosen = snapshots / commit / "config.json"
    if not chosen.is_file():
        if revision:
            return None  # the asked-for revision is not cached; do not substitute another
        found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        if not found:
            return None
        chosen = found[0]
    return _read_json(chosen), f"snapshot {chosen.parent.name[:12]}"


# Per model_type: (lm_head tied by default, q/k/v bias, o bias, norms per layer, q/k norm)
_ARCHITECTURES: dict[str, tuple[bool, bool, bool, int, bool]] = {
    "llama": (False, False, False, 2, False),
    "mistral": (False, False, False, 2, False),
    "mixtral": (False, False, False, 2, False),
    "qwen2": (False, True, False, 2, False),
    "qwen2_moe": (False, True, False, 2, False),
    "qwen3": (False, False, False, 2, True),
    "qwen3_moe": (False, False, False, 2, True),
    "gemma": (True, False, False, 2, False),
    "gemma2": (True, False, False, 4, False),
    "gemma3_text": (True, False, False, 4, True),
    "phi3": (False, False, False, 2, False),
}


def _size_from_config(config: dict[str, Any], source: str) -> ModelSize:
    """Closed-form count for decoder-only transformers (training.md §4.1).

    Exact for the architectures in ``_ARCHITECTURES`` (checked against
    transformers' own count); any other ``model_type`` gets the same formula
    with no biases and two norms per layer, labelled approximate.
    """
    nested = config.get("text_config")
    if "hidden_size" not in config and isinstance(nested, dict) and "hidden_size" in nested:
        size = _size_from_config({**nested, "model_type": nested.get("model_type", config.get("model_type"))}, source)
        size.exact = False
        size.source += " (text model only; the vision part is not counted)"
        return size
    model_type = str(config.get("model_type") or "")
    try:
        h = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        vocab = int(config["vocab_size"])
    except (KeyError, TypeError, ValueError):
        raise PlanError(
            f"{source}: needs hidden_size, num_hidden_layers, num_attention_heads and vocab_size to count "
            "parameters; use a name with the size (e.g. ...-8B) instead"
        ) from None
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or h // heads)
    inter = int(config.get("intermediate_size") or 4 * h)
    known = model_type in _ARCHITECTURES
    tie_default, qkv_bias, o_bias, norms, qk_norm = _ARCHITECTURES.get(model_type, (False, False, False, 2, False))
    if model_type in ("llama", "qwen3", "qwen3_moe") and config.get("attention_bias"):
        qkv_bias = o_bias = True
    tied = bool(config.get("tie_word_embeddings", tie_default))

    q, kv = heads * head_dim, kv_heads * head_dim
    attention = h * q + 2 * h * kv + q * h + (q + 2 * kv if qkv_bias else 0) + (h if o_bias else 0)
    attention += 2 * head_dim if qk_norm else 0
    dense_mlp = 3 * h * inter + (2 * inter + h if config.get("mlp_bias") else 0)

    experts = int(config.get("num_local_experts") or config.get("num_experts") or 0)
    expert_inter = int(config.get("moe_intermediate_size") or inter)
    top_k = int(config.get("num_experts_per_tok") or 0)
    shared_inter = int(config.get("shared_expert_intermediate_size") or 0)
    sparse_step = int(config.get("decoder_sparse_step") or 1)
    dense_only = set(config.get("mlp_only_layers") or [])
    one_expert = 3 * h * expert_inter
    shared = 3 * h * shared_inter + h if shared_inter else 0

    total = vocab * h + h + (0 if tied else vocab * h)
    unused_experts = 0
    for layer in range(layers):
        total += attention + norms * h
        if experts and layer not in dense_only and (layer + 1) % sparse_step == 0:
            total += experts * one_expert + h * experts + shared
            unused_experts += max(experts - top_k, 0) * one_expert if top_k else 0
        else:
            total += dense_mlp
    if experts and not known:
        source += f" (approximate: model_type {model_type or 'unknown'!r} counted with the generic mixture-of-experts formula)"
    elif not known:
        source += f" (approximate: model_type {model_type or 'unknown'!r} counted with the generic formula)"
    return ModelSize(
        params=total,
        source=source,
        exact=known,
        active_params=total - unused_experts if unused_experts else None,
        model_type=model_type or None,
        hidden_size=h,
        num_layers=layers,
        vocab_size=vocab,
        max_positions=_positive_int(config.get("max_position_embeddings")),
    )


def _positive_int(value: Any) -> int | None:
    """A config value that must be a positive whole number, or None when it is absent or unusable."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


_UNITS = {"m": 1e6, "b": 1e9, "t": 1e12}
_NUMBER = r"(\d+(?:\.\d+)?)"
_EDGE_BEFORE = r"(?<![A-Za-z0-9.])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"
_MOE_NAME = re.compile(_EDGE_BEFORE + r"(\d+)x" + _NUMBER + r"([mbt])" + _EDGE_AFTER, re.IGNORECASE)
_DENSE_NAME = re.compile(_EDGE_BEFORE + _NUMBER + r"([mbt])" + _EDGE_AFTER, re.IGNORECASE)
_ACTIVE_NAME = re.compile(r"(?<![A-Za-z0-9.])a" + _NUMBER + r"([mb])" + _EDGE_AFTER, re.IGNORECASE)
_EFFECTIVE_NAME = re.compile(r"(?<![A-Za-z0-9.])e" + _NUMBER + r"b" + _EDGE_AFTER, re.IGNORECASE)

#: Mixtral-style "8x7B": experts share attention and embeddings, so the total is
#: about 80% of 8 x 7B (Mixtral 8x7B: 46.7B; 8x22B: 141B).
MOE_NAME_SHARE = 0.82

#: Names that carry no size, checked in this order (first match wins).
KNOWN_FAMILIES: tuple[tuple[str, float], ...] = (
    ("phi-4-mini", 3.8e9),
    ("phi-4", 14.7e9),
    ("phi-3.5-mini", 3.8e9),
    ("phi-3-mini", 3.8e9),
    ("phi-3-medium", 14.0e9),
    ("mistral-nemo", 12.2e9),
    ("tinyllama", 1.1e9),
    ("gpt2-xl", 1.56e9),
    ("gpt2-large", 774e6),
    ("gpt2-medium", 355e6),
    ("gpt2", 124e6),
)


def _size_from_name(name: str) -> ModelSize | None:
    """Read the size from a model name; MoE totals and "E4B" effective sizes are approximate."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    moe = _MOE_NAME.search(base)
    if moe:
        per_expert = float(moe.group(2)) * _UNITS[moe.group(3).lower()]
        params = int(int(moe.group(1)) * per_expert * MOE_NAME_SHARE)
        return ModelSize(params, f"model name '{base}' ({moe.group(0)} experts, approximate)")
    dense = [float(m.group(1)) * _UNITS[m.group(2).lower()] for m in _DENSE_NAME.finditer(base)]
    active = _ACTIVE_NAME.search(base)
    active_params = int(float(active.group(1)) * _UNITS[active.group(2).lower()]) if active else None
    if dense:
        return ModelSize(int(max(dense)), f"model name '{base}'", active_params=active_params)
    effective = _EFFECTIVE_NAME.search(base)
    if effective:
        # Gemma 3n "E2B"/"E4B": effective size; the stored weights are about twice that.
        params = int(2 * float(effective.group(1)) * 1e9)
        return ModelSize(params, f"model name '{base}' (effective size {effective.group(0)}, total about twice that)")
    lowered = base.lower().replace("_", "-")
    for family, params_f in KNOWN_FAMILIES:
        if family in lowered:
            return ModelSize(int(params_f), f"known model family '{family}'")
    return None


def _human_params(params: float | None) -> str:
    """Three significant digits: 135M, 1.5B, 8.03B, 70.6B, 405B."""
    if not params:
        return "?"
    if params >= 1e12:
        return f"{params / 1e12:.3g}T"
    if params >= 1e9:
        return f"{params / 1e9:.3g}B"
    return f"{params / 1e6:.3g}M"


# ---------------------------------------------------------------------- memory
def memory_needed_gb(params: int, load_in_4bit: bool, max_seq_length: int = 2048, batch_size: int = 2) -> float:
    """GPU memory to fine-tune with LoRA (16-bit) or QLoRA (4-bit), in GB.

    The rule: Unsloth's minimum from its VRAM table (linear between rows; below
    3B a line from 1 GB at zero parameters; above 405B proportional to size),
    plus headroom for tokens in flight beyond batch 2 x 2048:
    ``0.11 GB x (params in B) ** (1/3)`` per extra 1,000 tokens.
    """
    billions = max(params, 0) / 1e9
    column = 1 if load_in_4bit else 2
    rows = UNSLOTH_VRAM_TABLE
    first, last = rows[0], rows[-1]
    if billions <= first[0]:
        base = SMALL_MODEL_FLOOR_GB + (first[column] - SMALL_MODEL_FLOOR_GB) * billions / first[0]
    elif billions >= last[0]:
        base = last[column] * billions / last[0]
    else:
        base = 0.0
        for low, high in itertools.pairwise(rows):
            if low[0] <= billions <= high[0]:
                share = (billions - low[0]) / (high[0] - low[0])
                base = low[column] + share * (high[column] - low[column])
                break
    extra_tokens = max(0, batch_size * max_seq_length - TABLE_TOKENS_IN_FLIGHT)
    headroom = extra_tokens / 1000 * CONTEXT_GB_PER_1K_TOKENS_AT_1B * max(billions, 0.01) ** (1 / 3)
    return round(base + headroom, 2)


def cpu_memory_needed_gb(params: int, max_seq_length: int = 2048, batch_size: int = 2) -> float:
    """RAM for LoRA on the CPU: always 16-bit (no 4-bit kernels there), with fp32 overheads."""
    return round(memory_needed_gb(params, False, max_seq_length, batch_size) * CPU_MEMORY_FACTOR, 2)


def fits(need_gb: float, available_gb: float) -> bool:
    return need_gb <= available_gb * GPU_MEMORY_USABLE


# ---------------------------------------------------------------------- the plan
@dataclass
class Plan:
    """Everything decided before a job starts; the controller acts on it, the UI shows it."""

    placement: str  # "local" | "runpod"
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
    cloud_type: str | None = None
    startup_seconds: float | None = None
    tokens_per_second: float | None = None
    tokens_per_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and the job folder."""
        return dataclasses.asdict(self)

    @property
    def gpu(self) -> GpuOption | None:
        return self.gpu_candidates[0] if self.gpu_candidates else None


def lost_pod_policy(config: TrainConfig) -> tuple[str, bool]:
    """What losing the pod (eviction, a dead worker) would mean for this job, and whether to warn.

    Said in the plan before anything is rented, and again in the job's log when the pod starts.
    """
    runpod, every = config.runpod, config.train.save_steps
    if not every:
        return (
            "No train.save_steps: if the pod is lost (evicted, its worker dies) the job fails and must start again; "
            "set train.save_steps to keep a checkpoint every N steps.",
            True,
        )
    if not runpod.resume_on_loss:
        return f"Checkpoints every {every} steps; runpod.resume_on_loss is off, so a lost pod ends the job.", False
    if runpod.volume_id:
        return f"Checkpoints every {every} steps on network volume {runpod.volume_id}; a lost pod resumes on a new one.", False
    if config.hub.checkpoint_repo_id:
        return (
            f"Checkpoints every {every} steps are pushed to the private Hub repo {config.hub.checkpoint_repo_id} "
            "and copied to this machine; a lost pod resumes from the newest on a new pod.",
            False,
        )
    return f"Checkpoints every {every} steps are copied to this machine; a lost pod resumes from the newest on a new pod.", False


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

    placement, device = _place(config, size, local, gpu_need, cpu_need, reasons, warnings)
    four_bit = config.model.load_in_4bit and device == "cuda"
    method = "QLoRA (4-bit)" if four_bit else "LoRA (16-bit)"
    if config.model.load_in_4bit and device == "cpu":
        reasons.append("4-bit loading needs a CUDA GPU; on the CPU the model loads in 16 bit.")
    need = gpu_need if device == "cuda" else cpu_need

    candidates: list[GpuOption] = []
    cloud: str | None = None
    if placement == "runpod":
        cloud = config.runpod.cloud_type
        candidates = _gpu_candidates(config, size, gpu_need, catalogue, user_gpus, reasons, warnings)
        policy, is_warning = lost_pod_policy(config)
        (warnings if is_warning else reasons).append(policy)

    steps, tokens_per_step = _steps(config, dataset, reasons)
    if dataset is not None and dataset.longest_tokens > train.max_seq_length:
        warnings.append(
            f"The longest row has {dataset.longest_tokens:,} tokens, more than train.max_seq_length "
            f"{train.max_seq_length:,}; longer rows are truncated."
        )
    speed = _tokens_per_second(size, device, four_bit, local, candidates)
    startup = _startup_seconds(size, placement)
    seconds = startup + steps * tokens_per_step / speed if steps is not None else None

    usd_per_hour = None
    cost = None
    if placement == "runpod" and candidates:
        usd_per_hour = candidates[0].usd_per_hour(config.runpod.cloud_type, config.runpod.allow_community)
        if usd_per_hour is None:
            warnings.append(f"No price is known for {candidates[0].gpu_type_id} in the {cloud} cloud; the cost is not estimated.")
        elif seconds is not None:
            cost = max(round(seconds / 3600 * usd_per_hour, 2), 0.01)
    _check_limits(config, placement, device, seconds, cost, warnings)

    return Plan(
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
        cloud_type=cloud,
        startup_seconds=round(startup),
        tokens_per_second=round(speed, 1),
        tokens_per_step=tokens_per_step,
    )


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
        f"({size.source}). Set train.max_seq_length (--max-seq-length) to {limit:,} or less.",
    )


#: Environment switches huggingface_hub and transformers read to stay offline.
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

#: How a model name written as a path starts; anything else shaped like owner/name is a Hub id.
_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def hub_offline() -> bool:
    """True when downloads from the Hub are switched off, as huggingface_hub decides it."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_ENV)


def check_model_source(config: TrainConfig, placement: str) -> None:
    """Refuse a model that cannot be loaded where the job would run, before anything starts.

    Catches what would otherwise fail only after a job (or a pod) has started: a
    local path that does not exist, a file where a folder is needed, and a Hub id
    that is neither cached nor downloadable because this machine is offline. A Hub
    id is not looked up online: planning never touches the network. A path that is
    missing here may still exist on a RunPod network volume, so it is let through
    when the job runs on RunPod with one.
    """
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
        if placement == "runpod" and config.runpod.volume_id:
            return
        raise ConfigError(
            "model.name",
            f"there is no model folder at {name}. Give a folder that holds config.json, or a Hub id such as "
            "unsloth/Llama-3.2-1B-Instruct.",
        )
    if placement == "local" and hub_offline() and _hub_cache_config(name, config.model.revision) is None:
        switches = ", ".join(f"{var}={os.environ[var]}" for var in OFFLINE_ENV if os.environ.get(var))
        raise ConfigError(
            "model.name",
            f"{name!r} is not in the Hugging Face cache ({hub_cache_dir()}) and downloads are switched off "
            f"({switches}). Check the id for typos, download it once with network access (hf download {name}), "
            "or point model.name at a local folder.",
        )


def _place(
    config: TrainConfig,
    size: ModelSize,
    local: LocalHardware,
    gpu_need: float,
    cpu_need: float,
    reasons: list[str],
    warnings: list[str],
) -> tuple[str, str]:
    """(placement, device) by config.placement, with the reason written down."""
    method = "QLoRA (4-bit)" if config.model.load_in_4bit else "LoRA (16-bit)"
    gpu_available = local.free_memory_gb if local.free_memory_gb is not None else local.memory_gb
    gpu_fits = local.device == "cuda" and fits(gpu_need, gpu_available)
    ram = _ram_available(local)
    ram_fits = ram is not None and cpu_need <= ram * GPU_MEMORY_USABLE
    need_text = f"{method} of {_human_params(size.params)} parameters needs ~{gpu_need:.1f} GB of GPU memory"

    if config.placement == "runpod":
        reasons.append("placement is runpod, so the job runs on a RunPod pod.")
        return "runpod", "cuda"

    if config.placement == "local":
        if local.device == "cuda":
            reasons.append(f"placement is local: training on {local.describe()}.")
            if not gpu_fits:
                warnings.append(
                    f"{need_text}, more than {GPU_MEMORY_USABLE:.0%} of the {gpu_available:.1f} GB available on "
                    f"{local.name}; it may run out of memory (try placement: auto, a shorter train.max_seq_length or batch_size 1)."
                )
            return "local", "cuda"
        if size.params > CPU_FORCED_MAX_PARAMS:
            raise PlanError(
                f"placement: local cannot train {_human_params(size.params)} parameters here: this machine has no "
                f"CUDA GPU and CPU training above ~{_human_params(CPU_FORCED_MAX_PARAMS)} would take days and "
                f"~{cpu_need:.0f} GB of RAM. Use placement: runpod (or auto), or a model up to ~1B."
            )
        reasons.append(f"placement is local and there is no CUDA GPU: training on the CPU ({local.describe()}).")
        if size.params > CPU_AUTO_MAX_PARAMS:
            warnings.append(
                f"{_human_params(size.params)} parameters on a CPU is slow (see the rough time); placement: auto would use RunPod."
            )
        if ram is not None and not ram_fits:
            warnings.append(
                f"LoRA on the CPU needs ~{cpu_need:.1f} GB of RAM and {ram:.1f} GB is available; it may run out of memory."
            )
        return "local", "cpu"

    # auto
    if gpu_fits:
        reasons.append(f"{need_text}; the local {local.name} has {gpu_available:.1f} GB available, so it trains here.")
        return "local", "cuda"
    if local.device == "cuda":
        reasons.append(f"{need_text}; the local {local.name} has only {gpu_available:.1f} GB available.")
    else:
        reasons.append(f"{need_text}; this machine has no CUDA GPU.")
    if size.params <= CPU_AUTO_MAX_PARAMS and ram_fits:
        reasons.append(
            f"Models up to ~{_human_params(CPU_AUTO_MAX_PARAMS)} train on the CPU in reasonable time "
            f"(~{cpu_need:.1f} GB of RAM), so it trains here on the CPU."
        )
        return "local", "cpu"
    if size.params <= CPU_AUTO_MAX_PARAMS:
        reasons.append(f"It would need ~{cpu_need:.1f} GB of RAM on the CPU, more than is available, so it goes to RunPod.")
    else:
        reasons.append(f"Above ~{_human_params(CPU_AUTO_MAX_PARAMS)} parameters the CPU is too slow, so it goes to RunPod.")
    return "runpod", "cuda"


def _ram_available(local: LocalHardware) -> float | None:
    if local.device == "cpu":
        return local.free_memory_gb if local.free_memory_gb is not None else local.memory_gb
    return local.ram_gb


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
        option = known.get(text) or by_key.get(_squash(text))
        if option is None:
            raise PlanError(f"runpod.gpus[{index}]: unknown GPU type {text!r}. {_suggest(text, list(known.values()))}")
        if option not in chosen:
            chosen.append(option)
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


def _gpu_candidates(
    config: TrainConfig,
    size: ModelSize,
    need: float,
    catalogue: list[GpuOption],
    user_gpus: list[GpuOption],
    reasons: list[str],
    warnings: list[str],
) -> list[GpuOption]:
    """RunPod GPUs in the order to try: the user's list as given, else the size class's
    preferred cards that fit, then every other card that fits, cheapest first. Cards
    RunPod reports out of stock go last."""
    cloud, community = config.runpod.cloud_type, config.runpod.allow_community
    priced = {g.gpu_type_id: g for g in catalogue}
    if user_gpus:
        options = [priced.get(g.gpu_type_id, g) for g in user_gpus]
        for option in options:
            if not fits(need, option.memory_gb):
                warnings.append(
                    f"{option.gpu_type_id} has {option.memory_gb} GB; the job needs ~{need:.1f} GB "
                    f"(+{1 - GPU_MEMORY_USABLE:.0%} headroom) and may run out of memory."
                )
        reasons.append("GPUs: runpod.gpus, in the order given.")
        return _stocked_first(options)

    usable = [g for g in catalogue if fits(need, g.memory_gb) and g.usd_per_hour(cloud, community) is not None]
    if not usable:
        largest = max((g.memory_gb for g in catalogue), default=0)
        hint = (
            "set model.load_in_4bit: true (QLoRA needs about a quarter of the memory)"
            if not config.model.load_in_4bit
            else "use a smaller model or a shorter train.max_seq_length / batch_size"
        )
        raise PlanError(
            f"No single RunPod GPU offered in the {cloud} cloud has the ~{need:.0f} GB this job needs "
            f"(the largest has {largest} GB, of which {GPU_MEMORY_USABLE:.0%} is used); {hint}."
        )
    class_name, preferred_ids = size_class(size.params)
    preferred = [g for gpu_id in preferred_ids for g in usable if g.gpu_type_id == gpu_id]
    rest = sorted((g for g in usable if g not in preferred), key=lambda g: (g.usd_per_hour(cloud, community) or 0.0, g.memory_gb))
    reasons.append(
        f"GPUs: at least {need / GPU_MEMORY_USABLE:.0f} GB each; preferred cards for {class_name} models first, "
        f"then the cheapest that fit ({cloud} prices{', community as fallback' if community else ''})."
    )
    return _stocked_first(preferred + rest)


def _stocked_first(options: list[GpuOption]) -> list[GpuOption]:
    return [g for g in options if g.in_stock] + [g for g in options if not g.in_stock]


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


def _tokens_per_second(size: ModelSize, device: str, four_bit: bool, local: LocalHardware, candidates: list[GpuOption]) -> float:
    """Rough training throughput: FLOPs for GPUs, a measured CPU point scaled by size and cores."""
    params = max(size.active_params or size.params, 1)
    if device == "cpu":
        cores = min(local.cpu_count or 2, 16)
        return CPU_TOKENS_PER_SECOND_135M_2_CORES * (134.5e6 / params) * (cores / 2)
    gpu_name = candidates[0].gpu_type_id if candidates else local.name
    tflops = training_tflops(gpu_name) or DEFAULT_TRAINING_TFLOPS
    speed = tflops * 1e12 / (FLOPS_PER_PARAM_PER_TOKEN * params) * (QLORA_SPEED_FACTOR if four_bit else 1.0)
    return min(speed, GPU_MAX_TOKENS_PER_SECOND)


def _startup_seconds(size: ModelSize, placement: str) -> float:
    weights_gb = size.params * 2 / 1e9
    if placement == "runpod":
        return POD_START_S + POD_SETUP_S + weights_gb * POD_DOWNLOAD_S_PER_GB + POD_FINISH_S
    return LOCAL_STARTUP_S + weights_gb * LOCAL_LOAD_S_PER_GB


def _check_limits(
    config: TrainConfig, placement: str, device: str, seconds: float | None, cost: float | None, warnings: list[str]
) -> None:
    limits = config.runpod
    if placement == "runpod" and cost is not None and limits.max_cost_usd is not None and cost > limits.max_cost_usd:
        warnings.append(
            f"The estimated ${cost:.2f} is more than runpod.max_cost_usd ${limits.max_cost_usd:.2f}; the pod will be "
            "stopped at the cap (keeping what was trained). Raise the cap or train fewer steps."
        )
    if placement == "runpod" and seconds is not None and seconds > limits.max_runtime:
        warnings.append(
            f"The estimated {_duration(seconds)} is longer than runpod.max_runtime {_duration(limits.max_runtime)}; "
            "the pod will be stopped at the limit. Raise it or train fewer steps."
        )
    if placement == "local" and device == "cpu" and seconds is not None and seconds > 2 * 3600:
        warnings.append(f"On this CPU the job takes roughly {_duration(seconds)}; placement: runpod would be faster.")


# ---------------------------------------------------------------------- display
def format_plan(plan: Plan, max_gpus: int = 5) -> str:
    """The plan as plain text, the same in a terminal and under a notebook cell."""
    where = "this machine" if plan.placement == "local" else "RunPod"
    if plan.placement == "local":
        target = "GPU" if plan.device == "cuda" else "CPU"
        headline = f"Plan: {plan.model} on {where} ({target}: {plan.local.name})"
    else:
        first = plan.gpu
        headline = f"Plan: {plan.model} on {where}" + (f" ({first.gpu_type_id})" if first else "")
    memory_kind = "GPU memory" if plan.device == "cuda" else "RAM"
    rows: list[tuple[str, str]] = [
        ("Model", plan.size.describe()),
        ("Method", f"{plan.method}, needs ~{plan.memory_needed_gb:.1f} GB of {memory_kind}"),
        ("This machine", plan.local.describe()),
    ]
    if plan.total_steps is not None:
        rows.append(("Steps", f"{plan.total_steps:,} (~{plan.tokens_per_step or 0:,} tokens per step)"))
    else:
        rows.append(("Steps", "unknown (no dataset summary or train.max_steps)"))
    if plan.estimated_seconds is not None:
        rows.append(
            (
                "Time",
                f"~{_duration(plan.estimated_seconds)} (rough; ~{plan.tokens_per_second or 0:,.0f} tokens/s, "
                f"incl. ~{_duration(plan.startup_seconds or 0)} start-up)",
            )
        )
    else:
        rows.append(("Time", "not estimated"))
    if plan.placement == "runpod":
        price = f"${plan.usd_per_hour:.2f}/h ({plan.cloud_type})" if plan.usd_per_hour is not None else "price unknown"
        cost = (
            f"~${plan.estimated_cost_usd:.2f} (rough) at {price}"
            if plan.estimated_cost_usd is not None
            else f"not estimated; {price}"
        )
        rows.append(("Cost", cost))
    else:
        rows.append(("Cost", "none (local)"))
    width = max(len(label) for label, _ in rows)
    lines = [headline] + [f"  {label.ljust(width)}  {value}" for label, value in rows]

    if plan.gpu_candidates:
        lines.append("  RunPod GPUs, in the order they are tried:")
        table = [("#", "gpuTypeId", "GB", "secure $/h", "community $/h", "stock")]
        for i, gpu in enumerate(plan.gpu_candidates[:max_gpus], 1):
            table.append(
                (
                    str(i),
                    gpu.gpu_type_id,
                    str(gpu.memory_gb),
                    _price(gpu.secure_usd_per_hour),
                    _price(gpu.community_usd_per_hour),
                    gpu.stock or "-",
                )
            )
        widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
        for r in table:
            cells = [r[0].rjust(widths[0]), r[1].ljust(widths[1])] + [r[c].rjust(widths[c]) for c in range(2, len(r))]
            lines.append("    " + "  ".join(cells).rstrip())
        if len(plan.gpu_candidates) > max_gpus:
            lines.append(f"    ... and {len(plan.gpu_candidates) - max_gpus} more")
    if plan.reasons:
        lines.append("  Why:")
        lines += [f"    - {r}" for r in plan.reasons]
    if plan.warnings:
        lines.append("  Warnings:")
        lines += [f"    ! {w}" for w in plan.warnings]
    return "\n".join(lines)


def _price(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = int(minutes // 60)
    rest = round(minutes - hours * 60)
    if hours >= 48:
        return f"{seconds / 86400:.1f} days"
    return f"{hours} h {rest:02d} min"
