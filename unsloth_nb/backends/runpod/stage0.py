"""Stage 0 of a pod's boot: the worker port until the client's package has come and its install is over.

Runs on the pod as ``python stage0.py BOOT_DIR`` (its source travels inside the boot script in the create
request, see :mod:`.bootstrap`), so it uses the standard library only and holds only what must run before
our package is there; the rest of the boot (the image's facts, the pinned install, ``boot.json``) comes
with the package, in :mod:`unsloth_nb.worker.pod_setup`, which keeps the create request small. It:

1. serves the worker port: ``GET /boot`` says where it stands, ``PUT /boot/package?sha256=H`` takes the zip
   of ``unsloth_nb``, checked against H, and unpacks it. Every request needs the job token, as the worker's
   own routes do; anything else answers 503;
2. once the package is there, starts the package's install step (``pod_setup.Setup``: the image's torch
   and CUDA, and ``pip install`` pinned to that torch when a training module is missing) before it answers
   the upload, so that answer carries the image's facts; then serves ``GET /boot`` until the install is over;
3. has ``pod_setup`` write ``boot.json`` for the worker and exits 0; 1 when the install replaced torch anyway
   (the worker still starts, so the job can say so); 3 when no package came within the idle timeout (the
   script then ends the pod).

A container restart that finds the package already unpacked skips the wait.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import shutil
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_PACKAGE_BYTES = 16 << 20
DEFAULT_WAIT_S = 900.0


class Boot:
    """What ``GET /boot`` reports, the one package this stage waits for, and the install it then starts."""

    def __init__(self, boot_dir: Path, token: str) -> None:
        self.boot_dir = boot_dir
        self.src = boot_dir / "src"
        self.token = token.encode()
        self.started = time.monotonic()
        self.setup: Any = None  # the package's pod_setup.Setup, once the package is here
        self.broken = ""  # why that install step could not start (the worker then reports what is missing)
        self.lock = threading.Lock()
        self.package_here = (self.src / "unsloth_nb" / "__init__.py").is_file()
        self.done = threading.Event()

    def state(self) -> dict[str, Any]:
        setup = self.setup
        return {
            "stage": "boot",
            "package": "received" if self.package_here else "waiting",
            "install": setup.poll() if setup else self.broken or "after the package",
            "seconds": round(time.monotonic() - self.started, 1),
            "facts": setup.facts if setup else {},
        }

    def receive(self, data: bytes, sha256: str) -> None:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("the package's sha256 does not match ?sha256=; send it again")
        shutil.rmtree(self.src / "unsloth_nb", ignore_errors=True)
        zipfile.ZipFile(io.BytesIO(data)).extractall(self.src)
        self.package_here = True
        print(f"[unsloth-nb boot] package received ({len(data)} bytes, sha256 checked)", flush=True)

    def begin(self) -> None:
        """Start the package's install step, once."""
        with self.lock:
            if self.setup is None and not self.broken:
                sys.path.insert(0, str(self.src))
                try:
                    from unsloth_nb.worker.pod_setup import Setup

                    self.setup = Setup(self.boot_dir)
                except Exception as exc:  # a package that cannot even start its install: the worker says the rest
                    self.broken = f"failed to start ({type(exc).__name__}: {exc})"
                    print(f"[unsloth-nb boot] install {self.broken}", flush=True)

    def poll(self) -> None:
        if self.broken or (self.setup is not None and self.setup.poll() != "running"):
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
            if path != "/boot/package" or not 0 < length <= MAX_PACKAGE_BYTES:
                self.close_connection = True
                if path != "/boot/package":
                    self._answer(503, {"error": "the pod is still booting", **boot.state()})
                else:
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
            boot.begin()
            self._answer(200, boot.state())
            boot.poll()

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
    boot_dir = Path(argv[0])
    boot_dir.mkdir(parents=True, exist_ok=True)
    token = os.environ.get("UNSLOTH_NB_WORKER_TOKEN", "")
    boot = Boot(boot_dir, token)
    if boot.package_here:
        boot.begin()
    elif not token:
        print("[unsloth-nb boot] no job token: nobody could send the package", flush=True)
        return 3
    port = int(os.environ.get("UNSLOTH_NB_WORKER_PORT") or 8000)
    port = int(os.environ.get(f"UNSLOTH_NB_EMULATOR_PORT_{port}") or port)
    host = os.environ.get("UNSLOTH_NB_EMULATOR_HOST") or "0.0.0.0"
    wait_s = float(os.environ.get("UNSLOTH_NB_WORKER_IDLE_TIMEOUT") or DEFAULT_WAIT_S)
    if not serve(boot, host, port, wait_s):
        print(f"[unsloth-nb boot] no package arrived within {wait_s:.0f} s", flush=True)
        return 3
    return int(boot.setup.finish(time.monotonic() - boot.started)) if boot.setup is not None else 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
