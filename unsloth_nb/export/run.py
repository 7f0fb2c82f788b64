"""The export step where the model is: merged models, GGUF files, the Ollama Modelfile, and their Hub pushes.

Order matters for memory and honesty: the 16-bit merge comes first (GGUF is converted from it), the 4-bit
merge last (Unsloth merges it into the loaded weights, after which nothing else should read them).
Every file written is a named artifact with a path under the job's output folder, so a pod's exports come
back to this machine like its adapter does.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.config.export import GGUF_CONVERTER_TYPES, gguf_types, push_repo_ids
from unsloth_nb.engine.save import MERGED_DIR, folder_bytes
from unsloth_nb.errors import BackendError, UnslothNbError
from unsloth_nb.phases.base import Artifact, PhaseResult

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.phases.base import PhaseHooks

GGUF_DIR = "gguf"
MERGED_4BIT_DIR = "merged_4bit"
#: A 16-bit merge made only to convert from; removed once the GGUF files exist.
SCRATCH_DIR = ".export"


def gguf_file_name(model_name: str, gguf_type: str) -> str:
    """``<model>.<TYPE>.gguf``, the Hub's usual naming (``SmolLM2-135M-Instruct.Q4_K_M.gguf``)."""
    stem = re.sub(r"[^\w.-]+", "-", Path(model_name.rstrip("/")).name).strip("-.") or "model"
    return f"{stem}.{gguf_type.upper()}.gguf"


def export_outputs(
    model: Any, tokenizer: Any, config: TrainConfig, output_dir: Path, hooks: PhaseHooks, earlier: PhaseResult
) -> PhaseResult:
    """Write and push what ``save:`` and ``hub.push`` ask for beyond the adapter; returns artifacts and timings.

    A failure a user can fix (tools missing, a tokenizer llama.cpp does not know, a push refused) does not fail
    the trained job: the adapter is saved, and on a pod it must still come back. What was exported before the
    failure is kept; the failure is a warning in the log and ``export_error`` in the metrics.
    """
    result = PhaseResult()
    try:
        _export(model, tokenizer, config, Path(output_dir), hooks, earlier, result)
    except UnslothNbError as exc:
        hooks.emit("log", level="warning", message=f"Export failed (the adapter is saved): {exc}", source="export")
        result.metrics["export_error"] = str(exc)
    return result


def _export(
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    output_dir: Path,
    hooks: PhaseHooks,
    earlier: PhaseResult,
    result: PhaseResult,
) -> None:
    push_to = push_repo_ids(config.hub)
    types = gguf_types(config.save)

    merged = earlier.artifacts.get("merged_16bit")
    merged_dir = merged.local_path(output_dir) if merged is not None else None
    scratch: Path | None = None
    if merged_dir is None and ("merged_16bit" in push_to or types):
        if "merged_16bit" in push_to:  # pushing it means keeping it too
            merged_dir = _merge_16bit(model, tokenizer, output_dir / MERGED_DIR, hooks, result)
            result.artifacts["merged_16bit"] = Artifact("merged_16bit", MERGED_DIR, bytes=folder_bytes(merged_dir))
        else:
            scratch = output_dir / SCRATCH_DIR / MERGED_DIR
            merged_dir = _merge_16bit(model, tokenizer, scratch, hooks, result)
    try:
        if types:
            assert merged_dir is not None
            _write_gguf(merged_dir, types, config, tokenizer, output_dir, hooks, result)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch.parent, ignore_errors=True)

    if config.save.merged_4bit or "merged_4bit" in push_to:
        _merge_4bit(model, tokenizer, config, output_dir, hooks, result)

    for target, repo_id in push_to.items():
        if target == "adapter":
            continue  # the save phase pushes the adapter
        _push(target, repo_id, config, output_dir, merged_dir, hooks, result)


def _merge_16bit(model: Any, tokenizer: Any, target: Path, hooks: PhaseHooks, result: PhaseResult) -> Path:
    hooks.emit("log", level="info", message="Merging the adapter into 16-bit weights for export.", source="export")
    started = time.monotonic()
    model.save_pretrained_merged(str(target), tokenizer, save_method="merged_16bit")
    result.metrics["export_merge_16bit_s"] = round(time.monotonic() - started, 2)
    return target


def _write_gguf(
    merged_dir: Path,
    types: list[str],
    config: TrainConfig,
    tokenizer: Any,
    output_dir: Path,
    hooks: PhaseHooks,
    result: PhaseResult,
) -> None:
    from unsloth_nb.export.convert import clear_byte_fallback, convert_to_gguf
    from unsloth_nb.export.install import ensure_llama_cpp
    from unsloth_nb.export.quantize import quantize_gguf
    from unsloth_nb.export.tools import LLAMA_CPP_DIR_ENV, converter_dir

    quantised = [t for t in types if t not in GGUF_CONVERTER_TYPES]
    if quantised or not os.environ.get(LLAMA_CPP_DIR_ENV):
        ensure_llama_cpp(hooks)  # the quantiser, and the version whose converter we take
    llama_cpp_dir = converter_dir()
    folder = output_dir / GGUF_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # Quantised types are made from the f16 file; it stays only when asked for.
    direct = [t for t in types if t in GGUF_CONVERTER_TYPES] + (["f16"] if quantised and "f16" not in types else [])
    files = {gguf_type: folder / gguf_file_name(config.model.name, gguf_type) for gguf_type in direct}
    if clear_byte_fallback(merged_dir):
        hooks.emit(
            "log",
            level="info",
            message="tokenizer.json: byte_fallback off for llama.cpp (a byte-level BPE never uses it; tokens unchanged).",
            source="export",
        )
    hooks.emit("log", level="info", message=f"Converting to GGUF {', '.join(direct)} with llama.cpp.", source="export")
    seconds = convert_to_gguf(merged_dir, files, llama_cpp_dir, config.save.gguf_pretok)
    result.metrics["export_gguf_convert_s"] = round(seconds, 2)  # all converter types, one process
    for gguf_type in quantised:
        target = folder / gguf_file_name(config.model.name, gguf_type)
        hooks.emit("log", level="info", message=f"Quantising the GGUF to {gguf_type}.", source="export")
        seconds = quantize_gguf(files["f16"], target, gguf_type)
        result.metrics[f"export_gguf_{gguf_type}_s"] = round(seconds, 2)
        files[gguf_type] = target
    if "f16" not in types:
        files.pop("f16").unlink(missing_ok=True)
    for gguf_type in types:
        path = files[gguf_type]
        relative = path.relative_to(output_dir).as_posix()
        size = path.stat().st_size
        result.artifacts[f"gguf_{gguf_type}"] = Artifact(f"gguf_{gguf_type}", relative, kind="file", bytes=size)
        result.metrics[f"export_gguf_{gguf_type}_bytes"] = size
        hooks.emit("artifact", name=f"gguf_{gguf_type}", path=str(path), bytes=size, kind="gguf")
    if config.save.ollama:
        from unsloth_nb.export.ollama import write_modelfile

        modelfile = write_modelfile(folder, tokenizer, config.model.chat_template, config.model.name, files[types[0]].name)
        relative = modelfile.relative_to(output_dir).as_posix()
        size = modelfile.stat().st_size
        result.artifacts["ollama_modelfile"] = Artifact("ollama_modelfile", relative, kind="file", bytes=size)
        hooks.emit("artifact", name="ollama_modelfile", path=str(modelfile), bytes=size, kind="ollama")


def _merge_4bit(
    model: Any, tokenizer: Any, config: TrainConfig, output_dir: Path, hooks: PhaseHooks, result: PhaseResult
) -> None:
    """Unsloth's merged_4bit merges into 4-bit (bitsandbytes) weights; a model loaded in 16 bit has none."""
    if not _loaded_in_4bit(model):
        why = (
            "the base model was loaded in 16 bit (CPU, or model.load_in_4bit: false), so there are no 4-bit weights to merge into"
        )
        hooks.emit("log", level="warning", message=f"save.merged_4bit skipped: {why}.", source="export")
        result.metrics["export_merged_4bit"] = f"skipped: {why}"
        return
    target = output_dir / MERGED_4BIT_DIR
    started = time.monotonic()
    # "_forced": Unsloth's own name for "I know a 4-bit merge loses accuracy"; asked for explicitly here.
    model.save_pretrained_merged(str(target), tokenizer, save_method="merged_4bit_forced")
    result.metrics["export_merge_4bit_s"] = round(time.monotonic() - started, 2)
    result.artifacts["merged_4bit"] = Artifact("merged_4bit", MERGED_4BIT_DIR, bytes=folder_bytes(target))
    hooks.emit("artifact", name="merged_4bit", path=str(target), bytes=folder_bytes(target), kind="merged_4bit")


def _loaded_in_4bit(model: Any) -> bool:
    base = getattr(model, "base_model", model)
    inner = getattr(base, "model", base)
    return bool(getattr(inner, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_4bit", False))


def _push(
    target: str,
    repo_id: str,
    config: TrainConfig,
    output_dir: Path,
    merged_dir: Path | None,
    hooks: PhaseHooks,
    result: PhaseResult,
) -> None:
    from unsloth_nb.hub import push_folder

    if target == "gguf":
        folder: Path | None = output_dir / GGUF_DIR
    elif target == "merged_16bit":
        folder = merged_dir
    else:
        artifact = result.artifacts.get("merged_4bit")
        folder = artifact.local_path(output_dir) if artifact is not None else None
    if folder is None or not folder.is_dir():
        hooks.emit("log", level="warning", message=f"hub.push {target}: nothing was written to push.", source="export")
        return
    try:
        url = push_folder(folder, repo_id, config.hub.private, f"Upload {target} (unsloth-nb)")
    except BackendError as exc:
        raise BackendError(f"{exc}. The {target} export is saved in {folder}.") from exc
    hooks.emit("artifact", name=f"hub_{target}", path=str(folder), bytes=folder_bytes(folder), kind="hub", url=url)
    result.metrics[f"hub_{target}"] = url
