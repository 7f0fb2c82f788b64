"""The serverless worker's boot: installs what the image lacks, then serves requests with the ``runpod`` SDK.

Its source travels in the template's env (``UNSLOTH_NB_SERVERLESS_BOOT``, gzip + base64), beside the pod's
install helpers (``UNSLOTH_NB_STAGE0``, :mod:`unsloth_nb.worker.pod_setup`), which it uses: the image's torch is read without
importing it and pinned, so the install never replaces it. It uses the standard library and, once
installed, the ``runpod`` SDK only; the ``unsloth_nb`` package comes with each request (``package``,
checked against ``package_sha256``), is unpacked once per version under ``$HOME`` and put first on
``sys.path``, and the request goes to :func:`unsloth_nb.worker.serverless.handle`. A generator handler,
so every yield is streamed to ``/stream``; ``return_aggregate_stream`` makes ``/status`` keep them all too.
"""

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: The pod's install helpers (image facts, constraints, pip command), from their source in the template's env.
_stage0 = {"__name__": "unsloth_nb_stage0"}
exec(gzip.decompress(base64.b64decode(os.environ["UNSLOTH_NB_STAGE0"])).decode("utf-8"), _stage0)
missing_modules, image_facts, describe = _stage0["missing_modules"], _stage0["image_facts"], _stage0["describe"]
constraints_for, pip_command = _stage0["constraints_for"], _stage0["pip_command"]


def install_missing():
    """pip install the job's requirements (and ``runpod``) when a module is missing, pinned to the image's torch."""
    needed = list(missing_modules())
    requirements = json.loads(os.environ.get("UNSLOTH_NB_REQUIREMENTS") or "[]")
    try:
        import runpod  # noqa: F401
    except ImportError:
        needed.append("runpod")
        requirements.append(os.environ.get("UNSLOTH_NB_RUNPOD_REQUIREMENT") or "runpod>=1.12,<2")
    if not needed:
        return
    facts = image_facts()
    print("unsloth-nb serverless boot: " + describe(facts) + "; installing for " + ", ".join(needed), flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(constraints_for(facts)) + "\n")
    subprocess.run(pip_command(requirements, Path(handle.name)), check=True)


def package_dir(body):
    """Unpack the request's package once per sha256; the folder to put first on sys.path."""
    digest = str(body.get("package_sha256") or "")
    target = Path(os.environ.get("HOME") or tempfile.gettempdir()) / ".unsloth-nb" / ("pkg-" + digest[:16])
    if (target / "unsloth_nb" / "__init__.py").exists():
        return target
    data = base64.b64decode(body["package"])
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError("the unsloth_nb package does not match its sha256")
    staging = Path(tempfile.mkdtemp(dir=target.parent if target.parent.exists() else None))
    zipfile.ZipFile(io.BytesIO(data)).extractall(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staging, target)
    except OSError:
        pass  # unpacked meanwhile by a concurrent request
    return target


def handler(job):
    body = job.get("input") if isinstance(job.get("input"), dict) else {}
    if "package" not in body:
        yield {"error": "not an unsloth-nb request: no package in the input"}
        return
    folder = str(package_dir(body))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from unsloth_nb.worker.serverless import handle

    yield from handle(job)


def serve():
    install_missing()
    import runpod

    runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})


serve()
