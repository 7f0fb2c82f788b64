"""Finding llama.cpp's GGUF tools: the HF converter (Python) and the quantiser (C, through llama-cpp-python).

Why these and not Unsloth's ``save_pretrained_gguf``: Unsloth's GGUF path clones or downloads llama.cpp
from GitHub at run time (its converter staging and its prebuilt binaries), which cannot work on a
machine that reaches only PyPI. llama-cpp-python is the maintained PyPI package that builds llama.cpp
from its source distribution: once installed, its ``llama_model_quantize`` is llama.cpp's quantiser and
its ``Llama`` loads and runs a GGUF. Its wheel leaves out llama.cpp's Python converter
(``convert_hf_to_gguf.py`` with its ``conversion`` and ``gguf-py`` packages), but its source
distribution holds them: we take those files from the sdist of the very version installed, so the
converter, the quantiser and the loader are one llama.cpp. They are cached under
``<cache>/llama.cpp/<version>``; ``UNSLOTH_NB_LLAMA_CPP_DIR`` points at any llama.cpp checkout instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from unsloth_nb.errors import UnslothNbError

LLAMA_CPP_DIR_ENV = "UNSLOTH_NB_LLAMA_CPP_DIR"
LLAMA_CPP_PACKAGE = "llama-cpp-python"
CONVERTER = "convert_hf_to_gguf.py"
#: What the converter needs from llama.cpp's tree (paths relative to it).
CONVERTER_PARTS = (CONVERTER, "conversion/", "gguf-py/", "LICENSE")
INSTALL_HINT = (
    "pip install 'unsloth-nb[gguf]' (it compiles llama-cpp-python from PyPI's source, about 5 minutes on 2 idle cores; "
    'CMAKE_ARGS="-DLLAVA_BUILD=OFF" makes it shorter)'
)


class GgufToolsMissing(UnslothNbError):
    """llama.cpp's converter or quantiser is not available here; the message says how to get it."""


def llama_cpp_version() -> str | None:
    try:
        return importlib.metadata.version(LLAMA_CPP_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_quantiser() -> str:
    """The installed llama-cpp-python version, or a message that says how to install it."""
    version = llama_cpp_version()
    if version is None or importlib.util.find_spec("llama_cpp") is None:
        raise GgufToolsMissing(f"GGUF export (save.gguf) needs llama.cpp's tools: {INSTALL_HINT}")
    return version


def converter_dir(fetch: bool = True) -> Path:
    """A llama.cpp tree holding the HF converter: ``$UNSLOTH_NB_LLAMA_CPP_DIR``, else the cached copy
    matching the installed llama-cpp-python (fetched from its sdist on PyPI on first use when ``fetch``)."""
    override = os.environ.get(LLAMA_CPP_DIR_ENV)
    if override:
        folder = Path(override).expanduser()
        if not (folder / CONVERTER).is_file():
            raise GgufToolsMissing(f"{LLAMA_CPP_DIR_ENV}={override} holds no {CONVERTER}: point it at a llama.cpp checkout")
        return folder
    version = require_quantiser()
    from unsloth_nb.models import cache_root

    folder = cache_root() / "llama.cpp" / version
    if (folder / CONVERTER).is_file():
        return folder
    if not fetch:
        raise GgufToolsMissing(
            f"llama.cpp's converter for llama-cpp-python {version} is not cached in {folder}: run "
            f"`python -m unsloth_nb.export.tools` (it takes the converter from PyPI's llama-cpp-python=={version} sdist), "
            f"or set {LLAMA_CPP_DIR_ENV} to a llama.cpp checkout"
        )
    return fetch_converter(version, folder)


def fetch_converter(version: str, folder: Path) -> Path:
    """Download llama-cpp-python's sdist with pip and keep only the converter's files in ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".llama-cpp-sdist-", dir=folder.parent) as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{LLAMA_CPP_PACKAGE}=={version}",
            "-d",
            scratch,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        archives = sorted(Path(scratch).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise GgufToolsMissing(
                f"could not download the {LLAMA_CPP_PACKAGE}=={version} source from PyPI for llama.cpp's converter "
                f"({tail}); set {LLAMA_CPP_DIR_ENV} to a llama.cpp checkout instead"
            )
        staging = Path(scratch) / "tree"
        _extract_converter(archives[0], staging)
        if not (staging / CONVERTER).is_file():
            raise GgufToolsMissing(
                f"{archives[0].name} holds no vendor/llama.cpp/{CONVERTER}; set {LLAMA_CPP_DIR_ENV} to a llama.cpp checkout"
            )
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / CONVERTER).is_file():  # not another process that finished first
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(staging, folder)
    return folder


def _extract_converter(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"]:
                continue
            relative = "/".join(parts[3:])
            if not any(relative == part or relative.startswith(part) for part in CONVERTER_PARTS if part):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = relative
            tar.extract(member, into, filter="data")


def main() -> None:
    """``python -m unsloth_nb.export.tools``: fetch (or find) the converter and say where it is."""
    print(converter_dir(fetch=True))


if __name__ == "__main__":
    main()
