"""f16 GGUF -> a quantised GGUF (q4_k_m, q5_k_m, ...) with llama.cpp's quantiser, in a child process.

The quantiser is ``llama_model_quantize`` from llama-cpp-python (llama.cpp's C library, built from its
PyPI source). A child process, because a C crash there must not end the kernel or the pod's worker.
``python -m unsloth_nb.export.quantize IN OUT TYPE [THREADS]`` is the child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from unsloth_nb.errors import BackendError

#: Our type names -> the ``LLAMA_FTYPE_MOSTLY_*`` constant of llama-cpp-python.
FTYPE_NAMES = {
    "q4_k_m": "Q4_K_M",
    "q4_k_s": "Q4_K_S",
    "q5_k_m": "Q5_K_M",
    "q5_k_s": "Q5_K_S",
    "q6_k": "Q6_K",
    "q3_k_m": "Q3_K_M",
    "q3_k_s": "Q3_K_S",
    "q3_k_l": "Q3_K_L",
    "q2_k": "Q2_K",
    "q4_0": "Q4_0",
    "q4_1": "Q4_1",
    "q5_0": "Q5_0",
    "q5_1": "Q5_1",
    "q8_0": "Q8_0",
}


def quantize_gguf(source: Path, target: Path, gguf_type: str, threads: int | None = None) -> float:
    """Write ``target`` as ``gguf_type`` from the f16 GGUF ``source``; returns seconds."""
    if gguf_type not in FTYPE_NAMES:
        raise BackendError(f"llama.cpp's quantiser has no type {gguf_type!r}; known: {', '.join(FTYPE_NAMES)}")
    command = [sys.executable, "-m", "unsloth_nb.export.quantize", str(source), str(target), gguf_type]
    command.append(str(threads or max(1, (os.cpu_count() or 2) - 1)))
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        tail = "\n".join(((done.stderr or "") + (done.stdout or "")).strip().splitlines()[-12:])
        raise BackendError(f"llama.cpp's quantiser failed making {target.name} (exit {done.returncode}):\n{tail}")
    return time.monotonic() - started


def _child(source: str, target: str, gguf_type: str, threads: str) -> int:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{FTYPE_NAMES[gguf_type]}")
    params.nthread = int(threads)
    status = llama_cpp.llama_model_quantize(source.encode(), target.encode(), params)
    if status != 0:
        print(f"llama_model_quantize returned {status}", file=sys.stderr)
    return int(status)


if __name__ == "__main__":
    raise SystemExit(_child(*sys.argv[1:5]))
