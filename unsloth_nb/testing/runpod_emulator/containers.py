"""Running a pod's start command as a local process: the emulator's stand-in for a container.

The process gets what a RunPod container gets, scaled down to loopback:

- ``bash -c <dockerArgs>`` (or dstack's JSON ``{"cmd": [...], "entrypoint": [...]}``
  form); an empty start command idles, like an image whose CMD sleeps.
- Its own working directory, also its ``HOME``, so each pod starts with a fresh disk.
- The pod's env, plus what RunPod injects (``RUNPOD_POD_ID``, a pod-scoped
  ``RUNPOD_API_KEY``, ``RUNPOD_POD_HOSTNAME``, ``RUNPOD_GPU_COUNT``, ``RUNPOD_PUBLIC_IP``,
  ``RUNPOD_TCP_PORT_<port>`` for TCP ports, ``PUBLIC_KEY``) and ``RUNPOD_API_BASE_URL``
  pointing back at the emulator so a pod can terminate itself.
- A ``PATH`` whose ``python``/``python3`` run this interpreter (so the worker runs in
  the test's environment) and whose ``runpodctl`` can remove the pod, as on RunPod.
- A process group of its own, so stop and terminate kill everything it started, and a
  watcher process (:mod:`.reaper`) that kills that group if the emulator itself dies, even by SIGKILL.
  When its first process exits, whatever it left in its group is killed, as a container's exit does.

Ports. A container cannot listen on its container port (8888 may be taken, and
two pods would collide), so each exposed port gets a free loopback port per
container start, and the process is told where to listen:

- ``UNSLOTH_NB_EMULATOR=1`` marks the emulator;
- ``UNSLOTH_NB_EMULATOR_HOST=127.0.0.1`` is the address to bind (on RunPod: 0.0.0.0);
- ``UNSLOTH_NB_EMULATOR_PORT_<container port>=<loopback port>`` for every exposed port.

So a server for container port P listens on
``(os.environ.get("UNSLOTH_NB_EMULATOR_HOST", "0.0.0.0"), int(os.environ.get(f"UNSLOTH_NB_EMULATOR_PORT_{P}", P)))``,
which is right on RunPod and in the emulator alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from unsloth_nb.testing.runpod_emulator.pods import EMULATOR_DATA_CENTER, Pod
from unsloth_nb.testing.runpod_emulator.reaper import REAPER

LOOPBACK = "127.0.0.1"

#: Variables of the emulator's own environment a container inherits, as an image would set them.
#: Secrets and the test process's settings stay out: a pod sees only what it was given.
_INHERITED = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "HF_ENDPOINT",
)

_RUNPODCTL = Path(__file__).with_name("runpodctl.py")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def write_shims(bin_dir: Path) -> None:
    """``python``, ``python3`` and ``runpodctl`` for containers.

    Shell wrappers rather than symlinks: a symlink to a venv's interpreter would
    start Python outside the venv, because Python looks for ``pyvenv.cfg`` next to
    the path it was started from.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(sys.executable)
    scripts = {
        "python": f'#!/bin/sh\nexec {python} "$@"\n',
        "python3": f'#!/bin/sh\nexec {python} "$@"\n',
        "runpodctl": f'#!/bin/sh\nexec {python} {shlex.quote(str(_RUNPODCTL))} "$@"\n',
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)


def start_argv(docker_args: str) -> list[str]:
    """The argv a container runs for ``dockerArgs``."""
    text = docker_args.strip()
    if not text:
        return ["bash", "-c", "exec sleep infinity"]
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            spec = json.loads(text)
            if isinstance(spec, dict) and ("cmd" in spec or "entrypoint" in spec):
                return [str(a) for a in [*spec.get("entrypoint", []), *spec.get("cmd", [])]]
    return ["bash", "-c", docker_args]


def container_env_base(home: Path, bin_dir: Path, extra_env: Mapping[str, str]) -> dict[str, str]:
    """What every container starts with (a pod's or a serverless worker's): the image's env, a home, the shims."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}"
    env.setdefault("LANG", "C.UTF-8")
    env.update({"HOME": str(home), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"})
    env.update(extra_env)
    return env


def container_env(pod: Pod, api_base_url: str, bin_dir: Path, pub_key: str, extra_env: Mapping[str, str]) -> dict[str, str]:
    """The full environment of ``pod``'s container (its ports must already be allocated)."""
    env = container_env_base(pod.home, bin_dir, extra_env)
    env.update(pod.env)
    env.update(
        {
            "RUNPOD_POD_ID": pod.id,
            "RUNPOD_API_KEY": pod.api_key,
            "RUNPOD_API_BASE_URL": api_base_url,
            "RUNPOD_POD_HOSTNAME": pod.pod_host_id,
            "RUNPOD_DC_ID": EMULATOR_DATA_CENTER,
            "RUNPOD_GPU_COUNT": str(pod.gpu_count),
            "RUNPOD_CPU_COUNT": str(pod.vcpu_count),
            "RUNPOD_PUBLIC_IP": LOOPBACK,
            "UNSLOTH_NB_EMULATOR": "1",
            "UNSLOTH_NB_EMULATOR_HOST": LOOPBACK,
        }
    )
    if pub_key:
        env.setdefault("PUBLIC_KEY", pub_key)
    for port in pod.ports:
        local = pod.local_ports[port.container_port]
        env[f"UNSLOTH_NB_EMULATOR_PORT_{port.container_port}"] = str(local)
        if port.protocol == "tcp":
            env[f"RUNPOD_TCP_PORT_{port.container_port}"] = str(local)
    return env


def spawn(pod: Pod, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``pod``'s container process, output appended to its log, in a new process group.

    The group is watched (see :mod:`.reaper`) until it is gone, so it dies with the emulator.
    """
    pod.home.mkdir(parents=True, exist_ok=True)
    pod.log_path.parent.mkdir(parents=True, exist_ok=True)
    with pod.log_path.open("ab") as log:
        log.write(f"[emulator] container start #{pod.starts + 1} of pod {pod.id}\n".encode())
        log.flush()
        process = subprocess.Popen(
            start_argv(pod.docker_args),
            cwd=pod.home,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    REAPER.watch(process.pid)
    threading.Thread(target=_end_group_after, args=(process,), name=f"runpod-emulator-group-{process.pid}", daemon=True).start()
    return process


def _end_group_after(process: subprocess.Popen[bytes]) -> None:
    """Once the container's first process exits (by itself or killed), kill what is left of its group."""
    process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    REAPER.release(process.pid)


def kill(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace_s`` (as ``docker stop`` does)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure nothing it started in its group survives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return
