"""The worker's settings, from flags and environment variables, checked before anything listens."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from unsloth_nb.worker.protocol import DEFAULT_PORT

TOKEN_ENV = "UNSLOTH_NB_WORKER_TOKEN"
PORT_ENV = "UNSLOTH_NB_WORKER_PORT"
DIR_ENV = "UNSLOTH_NB_WORKER_DIR"
IDLE_ENV = "UNSLOTH_NB_WORKER_IDLE_TIMEOUT"
#: Set by the pod's boot script: the JSON file where stage 0 wrote the image's torch/CUDA and how the install went.
BOOT_REPORT_ENV = "UNSLOTH_NB_BOOT_REPORT"
#: The RunPod emulator runs pods as local processes and says where each container port really listens.
EMULATOR_HOST_ENV = "UNSLOTH_NB_EMULATOR_HOST"
EMULATOR_PORT_ENV = "UNSLOTH_NB_EMULATOR_PORT_{port}"

DEFAULT_IDLE_TIMEOUT_S = 900.0
#: A token guards a publicly reachable pod; a short one could be guessed.
MIN_TOKEN_LENGTH = 16
POD_VOLUME = Path("/workspace")


class SettingsError(Exception):
    """A setting that stops the worker from starting; the message names the variable or flag."""


@dataclass(frozen=True)
class WorkerSettings:
    token: str = field(repr=False)
    host: str
    port: int
    work_dir: Path
    idle_timeout: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m unsloth_nb.worker",
        description="The unsloth-nb pod worker: receives one training job over HTTP, runs it, serves its events and files.",
    )
    parser.add_argument("--host", help="address to bind (default 0.0.0.0, which the RunPod proxy needs)")
    parser.add_argument("--port", type=int, help=f"port to listen on (default ${PORT_ENV} or {DEFAULT_PORT})")
    parser.add_argument("--dir", help=f"work folder (default ${DIR_ENV}, else /workspace/unsloth-nb, else ~/unsloth-nb-worker)")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace, environ: dict[str, str] | None = None) -> WorkerSettings:
    env = dict(os.environ if environ is None else environ)
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise SettingsError(f"{TOKEN_ENV} is not set; the worker refuses to start without a job token")
    if len(token) < MIN_TOKEN_LENGTH:
        raise SettingsError(f"{TOKEN_ENV} is too short; use at least {MIN_TOKEN_LENGTH} random characters")
    port = args.port if args.port is not None else _int_env(env, PORT_ENV, DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise SettingsError(f"port {port} is outside 0-65535")
    # Under the emulator, container port P is served on the loopback port it assigned to P.
    port = _int_env(env, EMULATOR_PORT_ENV.format(port=port), port)
    host = args.host or env.get(EMULATOR_HOST_ENV) or "0.0.0.0"
    idle = _float_env(env, IDLE_ENV, DEFAULT_IDLE_TIMEOUT_S)
    if not idle > 0:
        raise SettingsError(f"{IDLE_ENV} must be a positive number of seconds")
    work_dir = Path(args.dir or env.get(DIR_ENV) or default_work_dir()).expanduser().resolve()
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"cannot create the work folder {work_dir}: {exc.strerror}") from None
    if not os.access(work_dir, os.W_OK):
        raise SettingsError(f"the work folder {work_dir} is not writable")
    return WorkerSettings(token=token, host=host, port=port, work_dir=work_dir, idle_timeout=idle)


def default_work_dir() -> Path:
    """The pod volume when there is one (it survives a container restart), else the home folder."""
    if POD_VOLUME.is_dir() and os.access(POD_VOLUME, os.W_OK):
        return POD_VOLUME / "unsloth-nb"
    return Path.home() / "unsloth-nb-worker"


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def _float_env(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
