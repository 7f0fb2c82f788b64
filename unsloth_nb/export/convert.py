"""HF folder -> GGUF with llama.cpp's own converter, in a child process.

A child, because the converter imports its own ``gguf`` (the one beside it, matching its llama.cpp)
and may need gigabytes; a failure or a crash there must not take the kernel with it.

``python -m unsloth_nb.export.convert LLAMA_CPP_DIR PRE_TOKENIZER MODEL_DIR TYPE=FILE...`` is the child: it
runs the converter once per TYPE=FILE. PRE_TOKENIZER (``-`` for none) is what to record when llama.cpp does
not recognise the tokenizer: llama.cpp identifies a BPE pre-tokenizer by hashing how it splits a test
string and refuses any hash it does not list. Our tiny test model's tokenizer and many custom ones are
not listed; the user says which llama.cpp pre-tokenizer matches (``save.gguf_pretok``).
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import time
from pathlib import Path

from unsloth_nb.errors import BackendError


def convert_to_gguf(model_dir: Path, outputs: dict[str, Path], llama_cpp_dir: Path, pre_tokenizer: str | None = None) -> float:
    """Write each ``outputs[type]`` file (f16, bf16, f32 or q8_0) from a merged HF folder; returns seconds.

    One child for all types: importing torch and transformers there costs more than a small model's conversion.
    """
    pairs = [f"{outtype}={path}" for outtype, path in outputs.items()]
    command = [
        sys.executable,
        "-m",
        "unsloth_nb.export.convert",
        str(llama_cpp_dir),
        pre_tokenizer or "-",
        str(model_dir),
        *pairs,
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not all(path.is_file() for path in outputs.values()):
        output = (done.stderr or "") + (done.stdout or "")
        if "pre-tokenizer was not recognized" in output:
            raise BackendError(
                f"llama.cpp does not recognise this model's tokenizer, so it cannot tell how to split text as training "
                f"did; set save.gguf_pretok to the llama.cpp pre-tokenizer that matches it (e.g. default, "
                f"llama-bpe, qwen2), or export a model llama.cpp knows. The merged model is in {model_dir}."
            )
        tail = "\n".join(output.strip().splitlines()[-12:])
        raise BackendError(f"llama.cpp's converter failed on {model_dir} (exit {done.returncode}):\n{tail}")
    return time.monotonic() - started


def clear_byte_fallback(model_dir: Path) -> bool:
    """Turn off ``byte_fallback`` in a byte-level BPE ``tokenizer.json``; True when it changed the file.

    A byte-level BPE tokenizer (GPT-2 style: SmolLM2, Llama 3, Qwen) maps every byte to a token of its own, so
    falling back to ``<0xNN>`` byte tokens never happens and the flag changes no tokenization. But llama.cpp's
    converter reads the flag as "a SentencePiece-style Llama tokenizer" and writes a vocabulary without merges,
    which llama.cpp then crashes on. transformers sets the flag when it builds a tokenizer from a GGUF file
    (our SmolLM2 folder is made that way), so a model trained from one exported as a broken GGUF until this.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    pre = data.get("pre_tokenizer") or {}
    steps = (pre.get("pretokenizers") or [pre]) if isinstance(pre, dict) else []
    byte_level = any(isinstance(step, dict) and step.get("type") == "ByteLevel" for step in steps)
    if model.get("type") != "BPE" or not model.get("byte_fallback") or not byte_level:
        return False
    model["byte_fallback"] = False
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return True


def _child(argv: list[str]) -> None:
    llama_cpp_dir, pre_tokenizer, model_dir, *pairs = argv
    root = Path(llama_cpp_dir)
    # The converter's own gguf package first: it must match the converter, not whatever gguf is installed.
    sys.path[:0] = [str(root / "gguf-py"), str(root)]
    if pre_tokenizer != "-":
        _fall_back_to(pre_tokenizer)
    script = str(root / "convert_hf_to_gguf.py")
    for pair in pairs:
        outtype, _, outfile = pair.partition("=")
        sys.argv = [script, model_dir, "--outtype", outtype, "--outfile", outfile]
        runpy.run_path(script, run_name="__main__")


def _fall_back_to(pre_tokenizer: str) -> None:
    """Record ``pre_tokenizer`` where llama.cpp's converter would refuse an unknown tokenizer."""
    from conversion.base import TextModel

    known = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: object, tokenizer: object) -> str:
        try:
            return str(known(self, tokenizer))
        except NotImplementedError:
            print(f"unsloth-nb: unknown pre-tokenizer; recording {pre_tokenizer!r} (save.gguf_pretok)", file=sys.stderr)
            return pre_tokenizer

    TextModel.get_vocab_base_pre = get_vocab_base_pre


if __name__ == "__main__":
    _child(sys.argv[1:])
