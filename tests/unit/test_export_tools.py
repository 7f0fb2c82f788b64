"""Finding llama.cpp's converter: what is taken from an sdist, and what a user is told when it is missing."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from unsloth_nb.export.run import gguf_file_name
from unsloth_nb.export.tools import LLAMA_CPP_DIR_ENV, GgufToolsMissing, _extract_converter, converter_dir


def sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_only_the_converter_and_its_packages_are_taken_from_the_sdist(tmp_path: Path) -> None:
    archive = sdist(
        tmp_path / "llama_cpp_python-0.3.36.tar.gz",
        {
            "llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py": "print('convert')",
            "llama_cpp_python-0.3.36/vendor/llama.cpp/conversion/__init__.py": "",
            "llama_cpp_python-0.3.36/vendor/llama.cpp/conversion/base.py": "class TextModel: ...",
            "llama_cpp_python-0.3.36/vendor/llama.cpp/gguf-py/gguf/__init__.py": "",
            "llama_cpp_python-0.3.36/vendor/llama.cpp/LICENSE": "MIT",
            "llama_cpp_python-0.3.36/vendor/llama.cpp/src/llama.cpp": "int main() {}",
            "llama_cpp_python-0.3.36/vendor/llama.cpp/convert_lora_to_gguf.py": "",
            "llama_cpp_python-0.3.36/llama_cpp/llama.py": "",
        },
    )

    _extract_converter(archive, tmp_path / "tree")

    kept = sorted(p.relative_to(tmp_path / "tree").as_posix() for p in (tmp_path / "tree").rglob("*") if p.is_file())
    assert kept == [
        "LICENSE",
        "conversion/__init__.py",
        "conversion/base.py",
        "convert_hf_to_gguf.py",
        "gguf-py/gguf/__init__.py",
    ]


def test_a_folder_without_the_converter_is_refused_with_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LLAMA_CPP_DIR_ENV, str(tmp_path))
    with pytest.raises(GgufToolsMissing, match=f"{LLAMA_CPP_DIR_ENV}=.* holds no convert_hf_to_gguf.py"):
        converter_dir()
    (tmp_path / "convert_hf_to_gguf.py").write_text("")
    assert converter_dir() == tmp_path


def test_gguf_files_are_named_as_the_hub_names_them() -> None:
    assert gguf_file_name("/cache/models/SmolLM2-135M-Instruct", "q4_k_m") == "SmolLM2-135M-Instruct.Q4_K_M.gguf"
    assert gguf_file_name("unsloth/Llama-3.2-1B-Instruct", "f16") == "Llama-3.2-1B-Instruct.F16.gguf"


def test_byte_fallback_is_cleared_only_for_byte_level_bpe(tmp_path: Path) -> None:
    from unsloth_nb.export.convert import clear_byte_fallback

    def tokenizer(folder: str, pre: dict) -> Path:
        path = tmp_path / folder
        path.mkdir()
        (path / "tokenizer.json").write_text(
            json.dumps({"model": {"type": "BPE", "byte_fallback": True, "vocab": {"Ġa": 0}}, "pre_tokenizer": pre})
        )
        return path

    gpt2_style = tokenizer("smollm2", {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": False}]})
    sentencepiece_style = tokenizer("llama2", {"type": "Metaspace", "replacement": "▁"})

    assert clear_byte_fallback(gpt2_style) is True
    saved = json.loads((gpt2_style / "tokenizer.json").read_text())
    assert saved["model"] == {"type": "BPE", "byte_fallback": False, "vocab": {"Ġa": 0}}
    assert clear_byte_fallback(gpt2_style) is False  # already off
    assert clear_byte_fallback(sentencepiece_style) is False
    assert json.loads((sentencepiece_style / "tokenizer.json").read_text())["model"]["byte_fallback"] is True
