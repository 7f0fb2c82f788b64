"""Preflight checks of what would otherwise fail only once the model loads.

On RunPod the model loads after the pod is rented, so a chat template name
Unsloth does not know or a ``target_modules`` entry the model does not have
would cost a rental to discover. These checks run while planning, without
torch or unsloth: template names against a list kept in step with Unsloth's
own mapping (``tests/unit/test_checks.py`` reads unsloth's source to keep it
so), module names against the weights' names where a ``*.safetensors`` header
or index can be read here, else against the usual names for the model's
``model_type``.

Also here: defaults the user never set that the model contradicts (adjusted,
not refused). The keys a job needs are preflight's (:mod:`.preflight`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.config import TrainConfig
from unsloth_nb.errors import ConfigError, UnslothNbError, set_field

if TYPE_CHECKING:
    from unsloth_nb.planning.planner import Plan

__all__ = [
    "UNSLOTH_CHAT_TEMPLATES",
    "check_chat_template",
    "check_target_modules",
    "clamp_to_model",
    "model_module_names",
    "preflight_problems",
]

#: The names ``unsloth.chat_templates.CHAT_TEMPLATES`` accepts (unsloth 2026.10). Kept in step with the
#: installed unsloth by tests/unit/test_checks.py, which reads that mapping from unsloth's source.
UNSLOTH_CHAT_TEMPLATES = (
    "unsloth", "zephyr", "chatml", "mistral", "llama", "vicuna", "vicuna_old", "vicuna old", "alpaca",
    "gemma", "gemma_chatml", "gemma2", "gemma2_chatml", "llama-3", "llama3", "phi-3", "phi-35", "phi-3.5",
    "llama-3.1", "llama-31", "llama-3.2", "llama-3.3", "llama-32", "llama-33", "qwen-2.5", "qwen-25",
    "qwen25", "qwen2.5", "qwen-2.5-coder", "qwen-25-coder", "qwen2.5-coder", "qwen25-coder", "phi-4",
    "gemma-3", "gemma3", "qwen-3", "qwen3", "gemma-3n", "gemma3n", "gemma-4", "gemma4", "gemma-4-thinking",
    "gemma4-thinking", "gpt-oss", "gptoss", "qwen3-instruct", "qwen3-thinking", "lfm-2", "lfm-2.5",
    "starling", "yi-chat",
)  # fmt: skip

#: Layer names of architectures whose weights use them, for models whose weights cannot be read here.
_STANDARD_MODULES = frozenset(
    {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head"}
)
_MODULES_BY_TYPE: dict[str, frozenset[str]] = {
    model_type: _STANDARD_MODULES for model_type in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text")
}
#: config.json keys of mixture-of-experts models, whose expert weights Unsloth targets by its own rules.
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_intermediate_size")
#: Always present in a causal LM even when a checkpoint leaves them out (tied embeddings).
_ALWAYS = frozenset({"embed_tokens", "lm_head"})
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


def preflight_problems(config: TrainConfig, plan: Plan | None = None) -> list[UnslothNbError]:
    """Every mistake that would otherwise surface only when the model loads (on RunPod: after renting)."""
    del plan  # the checks read the model's files themselves; kept so callers pass what they have
    found = [check_chat_template(config), check_target_modules(config)]
    return [error for error in found if error is not None]


# ---------------------------------------------------------------------- chat template
def check_chat_template(config: TrainConfig) -> ConfigError | None:
    name = config.model.chat_template
    if not name or name in UNSLOTH_CHAT_TEMPLATES:
        return None
    close = difflib.get_close_matches(name, UNSLOTH_CHAT_TEMPLATES, n=1, cutoff=0.6)
    known = f"did you mean {close[0]!r}?" if close else f"Unsloth knows: {', '.join(sorted(UNSLOTH_CHAT_TEMPLATES))}."
    return ConfigError(
        "model.chat_template",
        f"Unsloth has no chat template {name!r}; {known} Leave it empty to use the tokenizer's own.",
    )


# ---------------------------------------------------------------------- target modules
def check_target_modules(config: TrainConfig) -> ConfigError | None:
    """Names that are not module names, or that the model does not have (when its files can be read)."""
    targets = list(config.lora.target_modules)
    malformed = [name for name in targets if not _MODULE_NAME.match(name)]
    if malformed:
        return ConfigError(
            "lora.target_modules",
            f"{', '.join(map(repr, malformed))} is not a module name; give names separated by commas, "
            f"e.g. {set_field('lora.target_modules', 'q_proj,k_proj,v_proj')}",
        )
    if not config.user_set("lora.target_modules"):
        return None  # Unsloth's own default list, which Unsloth maps onto each architecture itself
    known = model_module_names(config.model.name, config.model.revision)
    if known is None:
        return None
    names, source = known
    missing = [name for name in targets if not _matches(name, names)]
    if not missing:
        return None
    leaves = sorted({name.rsplit(".", 1)[-1] for name in names} - {"weight", "bias"})
    guesses = [difflib.get_close_matches(name.rsplit(".", 1)[-1], leaves, n=1, cutoff=0.6) for name in missing]
    hint = " ".join(f"For {name!r}, did you mean {g[0]!r}?" for name, g in zip(missing, guesses, strict=True) if g)
    shown = [leaf for leaf in leaves if leaf not in ("embed_tokens", "lm_head", "norm")][:20]
    return ConfigError(
        "lora.target_modules",
        f"{config.model.name} has no module {', '.join(map(repr, missing))} ({source}). "
        + (f"{hint} " if hint else "")
        + f"Its layers are: {', '.join(shown)}.",
    )


def _matches(target: str, names: set[str]) -> bool:
    """PEFT's rule for a list of names: a module whose dotted path is the name or ends with it."""
    if target in _ALWAYS:
        return True
    return any(name == target or name.endswith("." + target) for name in names)


def model_module_names(name_or_path: str, revision: str | None = None) -> tuple[set[str], str] | None:
    """(dotted module paths, where they were read) for a model on this machine, or None when unknown.

    Reads only the weights' names (a ``*.safetensors`` header or its index), never the weights.
    """
    folder = _model_folder(name_or_path.strip(), revision)
    if folder is None:
        return None
    config = _read_json(folder / "config.json") or {}
    if any(key in config for key in _EXPERT_KEYS):
        return None  # mixture of experts: Unsloth maps the usual names onto fused expert weights itself
    names = _names_from_weights(folder)
    if names:
        return names, f"weights in {folder}"
    modules = _MODULES_BY_TYPE.get(str(config.get("model_type")))
    if modules:
        return set(modules), f"usual layers of a {config['model_type']} model"
    return None


def _model_folder(name: str, revision: str | None) -> Path | None:
    if not name:
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        return path if (path / "config.json").is_file() else None
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        return None
    from unsloth_nb.planning.model_size import hub_cache_dir

    repo = hub_cache_dir() / ("models--" + name.replace("/", "--"))
    ref = repo / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else (revision or "")
    snapshot = repo / "snapshots" / commit if commit else None
    if snapshot is not None and (snapshot / "config.json").is_file():
        return snapshot
    return None


def _names_from_weights(folder: Path) -> set[str]:
    keys: list[str] = []
    index = _read_json(folder / "model.safetensors.index.json")
    if index and isinstance(index.get("weight_map"), dict):
        keys = list(index["weight_map"])
    else:
        for file in sorted(folder.glob("*.safetensors"))[:1]:
            keys = _safetensors_keys(file)
    modules = set()
    for key in keys:
        parts = key.split(".")
        for end, part in enumerate(parts):
            if part in ("weight", "bias"):
                parts = parts[:end]
                break
        if parts:
            modules.add(".".join(parts))
    return modules


def _safetensors_keys(file: Path) -> list[str]:
    """Tensor names from a safetensors header: 8 bytes of length, then that much JSON."""
    try:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                return []
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError):
        return []
    return [key for key in header if key != "__metadata__"] if isinstance(header, dict) else []


def _read_json(file: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------- defaults the model contradicts
def clamp_to_model(config: TrainConfig) -> TrainConfig:
    """Lower a max_seq_length the user never set to what the model can attend to; a value they set is checked by the plan."""
    if config.user_set("train.max_seq_length"):
        return config
    from unsloth_nb.planning.model_size import estimate_model_size

    try:
        limit = estimate_model_size(config.model.name, config.model.revision).max_positions
    except UnslothNbError:
        return config
    if limit is None or config.train.max_seq_length <= limit:
        return config
    clamped = dataclasses.replace(config, train=dataclasses.replace(config.train, max_seq_length=limit))
    clamped.explicit = config.explicit
    return clamped
