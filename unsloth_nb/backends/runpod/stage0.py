"""Stage 0 of a pod's boot: what the image brings, a pinned install, and the package over the worker port.

Runs on the pod as ``python - BOOT_DIR REQUIREMENT...`` (its source travels inside
the boot script, see :mod:`.bootstrap`), so it uses the standard library only. It:

1. reads the image's torch, torchvision, xformers and CUDA versions and the GPU
   driver, without importing torch, and prints them as one JSON line;
2. when a training module is missing, starts ``pip install`` of the requirements in
   the background, constrained to the image's torch (and a torchvision and xformers
   built for it): pip may add packages but can never swap the image's torch for
   PyPI's newest, which may need a newer driver than the host has;
3. serves the worker port until the package has arrived and the install is over:
   ``GET /boot`` says where it stands (and the image facts), ``PUT /boot/package?sha256=H``
   takes the zip of ``unsloth_nb``, checked against H, and unpacks it. Every request
   needs the job token, as the worker's own routes do; anything else answers 503;
4. writes ``boot.json`` (the facts, how the install went) for the worker, which reports
   it as an event, and exits 0; 1 when the install replaced torch anyway (the worker
   still starts, so the job can say so); 3 when no package came within the idle timeout
   (the script then ends the pod).

A container restart that finds the package already unpacked skips the wait.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

#: Modules training needs; when all are found, pip is skipped (found, not imported: importing takes seconds).
TRAINING_MODULES = ("yaml", "platformdirs", "torch", "transformers", "trl", "peft", "datasets", "unsloth")
#: The xformers build for each torch release, from unsloth 2026.10.9's own ``cuXXXonlytorchYYY`` extras.
XFORMERS_FOR_TORCH = {
    "2.6": "0.0.29.post3",
    "2.7.0": "0.0.30",
    "2.7.1": "0.0.31.post1",
    "2.8": "0.0.32.post2",
    "2.9.0": "0.0.33.post1",
    "2.9.1": "0.0.33.post2",
    "2.10": "0.0.34",
    "2.11": "0.0.35",
    "2.12": "0.0.35",
}
MAX_PACKAGE_BYTES = 16 << 20
DEFAULT_WAIT_S = 900.0


# ---------------------------------------------------------------------- what the image brings
def public_version(version: str) -> str:
    """``2.9.1+cu128`` -> ``2.9.1``: what PyPI's index knows, and what a ``==`` pin matches any build of."""
    return version.split("+", 1)[0]


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def torch_cuda() -> str | None:
    """The CUDA version torch was built for, read from ``torch/version.py`` (importing torch takes seconds)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "version.py"
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("cuda") and "=" in line:
                    value = line.split("=", 1)[1].strip().strip("'\"")
                    return None if value in ("", "None") else value
    return None


def gpu_facts() -> dict[str, str]:
    """GPU names and the host driver, from nvidia-smi when the image has it."""
    if shutil.which("nvidia-smi") is None:
        return {}
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    rows = [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]
    if not rows:
        return {}
    return {"gpu": f"{len(rows)} x {rows[0][0]}", "driver": rows[0][-1]}


def image_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "torch": installed("torch"),
        "torch_cuda": torch_cuda(),
        "torchvision": installed("torchvision"),
        "xformers": installed("xformers"),
        "cuda_env": os.environ.get("CUDA_VERSION"),
    }
    facts.update(gpu_facts())
    return facts


def describe(facts: dict[str, Any]) -> str:
    """One line for a person: the torch and CUDA this pod trains with."""
    torch = facts.get("torch") or "not installed"
    cuda = f"CUDA {facts['torch_cuda']}" if facts.get("torch_cuda") else "no CUDA build"
    gpu = f"{facts['gpu']}, driver {facts.get('driver')}" if facts.get("gpu") else "no GPU visible"
    return f"torch {torch} ({cuda}), python {facts.get('python')}, {gpu}"


# ---------------------------------------------------------------------- the pinned install
def constraints_for(facts: dict[str, Any]) -> list[str]:
    """pip constraints that keep the image's torch and add only a torchvision and xformers built for it."""
    torch = facts.get("torch")
    if not torch:
        return []
    base = public_version(str(torch))
    pins = [f"torch=={base}"]
    parts = base.split(".")
    vision = facts.get("torchvision")
    if vision:
        pins.append(f"torchvision=={public_version(str(vision))}")
    elif len(parts) >= 3 and parts[0] == "2" and parts[1].isdigit():
        pins.append(f"torchvision==0.{int(parts[1]) + 15}.{parts[2]}")
    xformers = facts.get("xformers") or XFORMERS_FOR_TORCH.get(base) or XFORMERS_FOR_TORCH.get(".".join(parts[:2]))
    if xformers:
        pins.append(f"xformers=={public_version(str(xformers))}")
    return pins


def missing_modules() -> list[str]:
    return [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None]


def pip_command(requirements: list[str], constraints_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--no-cache-dir",
        "--constraint",
        str(constraints_file),
        *requirements,
    ]


# ---------------------------------------------------------------------- stage 0 itself
class Boot:
    """What ``GET /boot`` reports, and the one package this stage waits for."""

    def __init__(self, boot_dir: Path, token: str, facts: dict[str, Any]) -> None:
        self.boot_dir = boot_dir
        self.src = boot_dir / "src"
        self.token = token.encode()
        self.facts = facts
        self.started = time.monotonic()
        self.installer: subprocess.Popen[bytes] | None = None
        self.install = "not needed"
        self.package_here = (self.src / "unsloth_nb" / "__init__.py").is_file()
        self.done = threading.Event()

    def state(self) -> dict[str, Any]:
        return {
            "stage": "boot",
            "package": "received" if self.package_here else "waiting",
            "install": self.install,
            "seconds": round(time.monotonic() - self.started, 1),
            "facts": self.facts,
        }

    def receive(self, data: bytes, sha256: str) -> None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("the package's sha256 does not match ?sha256=; send it again")
        shutil.rmtree(self.src / "unsloth_nb", ignore_errors=True)
        zipfile.ZipFile(io.BytesIO(data)).extractall(self.src)
        self.package_here = True
        print(f"[unsloth-nb boot] package received ({len(data)} bytes, sha256 checked)", flush=True)

    def poll(self) -> None:
        if self.installer is not None and self.install == "running":
            code = self.installer.poll()
            if code is not None:
                self.install = "done" if code == 0 else f"failed ({code})"
        if self.package_here and self.install != "running":
            self.done.set()


def serve(boot: Boot, host: str, port: int, wait_s: float) -> bool:
    """Serve stage 0 until the package is here and the install is over; False when no package came in time."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status == 503:
                self.send_header("Retry-After", "2")
            self.end_headers()
            self.wfile.write(body)

        def _allowed(self) -> bool:
            scheme, _, presented = (self.headers.get("Authorization") or "").partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), boot.token)
            if not ok:
                self._answer(401, {"error": "unauthorized"})
            return ok

        def do_GET(self) -> None:
            if not self._allowed():
                return
            if self.path.split("?", 1)[0] == "/boot":
                self._answer(200, boot.state())
            else:
                self._answer(503, {"error": "the pod is still booting", **boot.state()})

        def do_PUT(self) -> None:
            if not self._allowed():
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            if path != "/boot/package":
                self.close_connection = True
                self._answer(503, {"error": "the pod is still booting", **boot.state()})
                return
            if not 0 < length <= MAX_PACKAGE_BYTES:
                self.close_connection = True
                self._answer(413, {"error": f"the package must be 1 to {MAX_PACKAGE_BYTES} bytes"})
                return
            data = self.rfile.read(length)
            sha256 = dict(p.partition("=")[::2] for p in query.split("&") if p).get("sha256", "")
            try:
                if not boot.package_here:
                    boot.receive(data, sha256)
            except (ValueError, zipfile.BadZipFile) as exc:
                self._answer(400, {"error": str(exc)})
                return
            boot.poll()
            self._answer(200, boot.state())

        do_POST = do_PUT

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    deadline = time.monotonic() + wait_s
    try:
        while not boot.done.wait(0.2):
            boot.poll()
            if not boot.package_here and time.monotonic() > deadline:
                return False
        time.sleep(0.3)  # let the answer that completed the boot reach the client
        return True
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> int:
    boot_dir, requirements = Path(argv[0]), argv[1:]
    boot_dir.mkdir(parents=True, exist_ok=True)
    facts = image_facts()
    (boot_dir / "pod.json").write_text(json.dumps(facts), encoding="utf-8")
    print("[unsloth-nb boot] image: " + describe(facts), flush=True)
    print("[unsloth-nb boot] facts " + json.dumps(facts), flush=True)
    token = os.environ.get("UNSLOTH_NB_WORKER_TOKEN", "")
    boot = Boot(boot_dir, token, facts)
    missing = missing_modules()
    if missing:
        pins = constraints_for(facts)
        constraints = boot_dir / "constraints.txt"
        constraints.write_text("".join(pin + "\n" for pin in pins), encoding="utf-8")
        print(
            f"[unsloth-nb boot] installing {' '.join(requirements)} (missing: {', '.join(missing)}; "
            f"pinned: {', '.join(pins) or 'nothing'})",
            flush=True,
        )
        log = (boot_dir / "install.log").open("wb")
        boot.installer = subprocess.Popen(pip_command(requirements, constraints), stdout=log, stderr=subprocess.STDOUT)
        boot.install = "running"
    else:
        print("[unsloth-nb boot] training packages already installed", flush=True)
    port = int(os.environ.get("UNSLOTH_NB_WORKER_PORT") or 8000)
    port = int(os.environ.get(f"UNSLOTH_NB_EMULATOR_PORT_{port}") or port)
    host = os.environ.get("UNSLOTH_NB_EMULATOR_HOST") or "0.0.0.0"
    wait_s = float(os.environ.get("UNSLOTH_NB_WORKER_IDLE_TIMEOUT") or DEFAULT_WAIT_S)
    if not boot.package_here and not token:
        print("[unsloth-nb boot] no job token: nobody could send the package", flush=True)
        return 3
    if not serve(boot, host, port, wait_s):
        print(f"[unsloth-nb boot] no package arrived within {wait_s:.0f} s", flush=True)
        return 3
    if boot.install.startswith("failed"):
        tail = (boot_dir / "install.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"[unsloth-nb boot] pip install {boot.install}; the job will report what is missing:\n{tail}", flush=True)
    after = installed("torch")
    problem = None
    if facts.get("torch") and after != facts["torch"]:
        problem = f"the install replaced the image's torch {facts['torch']} with {after}; the GPU may be unusable"
        print(f"[unsloth-nb boot] ERROR: {problem}", flush=True)
    seconds = round(time.monotonic() - boot.started, 1)
    report = {"facts": facts, "summary": describe(facts), "install": boot.install, "seconds": seconds, "problem": problem}
    (boot_dir / "boot.json").write_text(json.dumps(report), encoding="utf-8")
    print(f"[unsloth-nb boot] ready after {seconds:.1f} s; install {boot.install}", flush=True)
    return 1 if problem else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
