"""What this machine would train on: its first NVIDIA GPU, else its CPU and RAM.

The planner compares a job's memory need with this to decide whether the job can
train here. The GPU is found with ``nvidia-smi``, not torch, so that ``unsloth-nb
plan`` answers in a second on a laptop with no GPU and no CUDA install; set
``UNSLOTH_NB_LOCAL_DEVICE=cpu`` to plan as if there were no GPU.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from unsloth_nb.errors import PlanError

__all__ = ["LOCAL_DEVICE_ENV", "LocalHardware", "detect_local_hardware"]


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
