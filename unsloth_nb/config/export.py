"""What an export may write and push: GGUF types, Hub targets, and where each pushed target lands.

The fields themselves live in ``save:`` (``gguf``, ``ollama``, ``merged_4bit``, ``gguf_pretok``)
and ``hub:`` (``push``), the sections users already write; the rules live here so the phase, the plan
and the checks read one list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unsloth_nb.errors import ConfigError

if TYPE_CHECKING:
    from unsloth_nb.config.sections import HubConfig, SaveConfig

#: GGUF types written straight by llama.cpp's converter (no quantiser needed).
GGUF_CONVERTER_TYPES = ("f16", "bf16", "f32", "q8_0")
#: Types made from the f16 GGUF by llama.cpp's quantiser (``llama_model_quantize``), by llama.cpp's
#: own names; the importance-matrix types (iq*) are left out, as they need an imatrix file.
GGUF_QUANTISER_TYPES = (
    "q4_k_m",
    "q4_k_s",
    "q5_k_m",
    "q5_k_s",
    "q6_k",
    "q3_k_m",
    "q3_k_s",
    "q3_k_l",
    "q2_k",
    "q4_0",
    "q4_1",
    "q5_0",
    "q5_1",
)
GGUF_TYPES = GGUF_CONVERTER_TYPES + GGUF_QUANTISER_TYPES
#: Unsloth's notebooks' names for the same things (``quantization_method="not_quantized"`` ...).
GGUF_TYPE_ALIASES = {"not_quantized": "f16", "fast_quantized": "q8_0", "quantized": "q4_k_m"}

#: What ``hub.push`` may name, and the suffix of the repository each goes to when several are pushed.
PUSH_TARGETS = ("adapter", "merged_16bit", "merged_4bit", "gguf")
PUSH_SUFFIX = {"adapter": "", "merged_16bit": "-merged-16bit", "merged_4bit": "-merged-4bit", "gguf": "-GGUF"}


def gguf_types(save: SaveConfig) -> list[str]:
    """The GGUF types asked for, canonical names, in order, without repeats."""
    seen: list[str] = []
    for raw in save.gguf:
        name = GGUF_TYPE_ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
        if name not in seen:
            seen.append(name)
    return seen


def push_repo_ids(hub: HubConfig) -> dict[str, str]:
    """Which Hub repository each pushed target goes to.

    One target goes to ``repo_id`` itself. With several, the adapter keeps ``repo_id`` and every other
    target gets a repository of its own (``<repo_id>-merged-16bit``, ``-merged-4bit``, ``-GGUF``, the
    Hub's usual names), because a merged model and an adapter in one repository confuse every loader.
    """
    if not hub.repo_id:
        return {}
    targets = [t for t in PUSH_TARGETS if t in hub.push]
    if len(targets) == 1:
        return {targets[0]: hub.repo_id}
    return {target: hub.repo_id + PUSH_SUFFIX[target] for target in targets}


def exports_wanted(save: SaveConfig, hub: HubConfig) -> bool:
    """Whether the job has an export phase (anything beyond the adapter and the plain merged model)."""
    pushed = set(hub.push) - {"adapter"} if hub.repo_id else set()
    return bool(save.gguf or save.ollama or save.merged_4bit or pushed)


def save_problems(save: SaveConfig) -> list[ConfigError]:
    errors = []
    for raw in save.gguf:
        name = GGUF_TYPE_ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
        if name not in GGUF_TYPES:
            errors.append(
                ConfigError(
                    "save.gguf",
                    f"{raw!r} is not a GGUF type we write; choose from {', '.join(GGUF_TYPES)} "
                    "(or Unsloth's not_quantized, fast_quantized, quantized)",
                )
            )
    if save.ollama and not save.gguf:
        errors.append(ConfigError("save.ollama", "an Ollama Modelfile points at a GGUF file: also set save.gguf, e.g. [q4_k_m]"))
    return errors


def hub_problems(hub: HubConfig, save: SaveConfig) -> list[ConfigError]:
    errors = []
    unknown = [t for t in hub.push if t not in PUSH_TARGETS]
    if unknown:
        errors.append(
            ConfigError("hub.push", f"{', '.join(map(repr, unknown))}: hub.push names some of {', '.join(PUSH_TARGETS)}")
        )
    if "gguf" in hub.push and hub.repo_id and not save.gguf:
        errors.append(ConfigError("hub.push", "pushing gguf needs GGUF files: set save.gguf, e.g. [q4_k_m]"))
    if not hub.push and hub.repo_id:
        errors.append(ConfigError("hub.push", "hub.repo_id is set but hub.push is empty: name what to push, e.g. [adapter]"))
    return errors


__all__ = [
    "GGUF_CONVERTER_TYPES",
    "GGUF_QUANTISER_TYPES",
    "GGUF_TYPES",
    "GGUF_TYPE_ALIASES",
    "PUSH_TARGETS",
    "exports_wanted",
    "gguf_types",
    "hub_problems",
    "push_repo_ids",
    "save_problems",
]
