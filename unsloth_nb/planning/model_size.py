"""How many parameters a model has, found without loading its weights or contacting the Hub.

The count is the first input of a plan: memory, placement, time and cost all
follow from it. It comes from a ``config.json`` (in a local folder, an adapter
folder's base model, or the Hugging Face cache), counted in closed form for
decoder-only transformers, else from the size in the model's name (``8B``,
``8x7B``, ``30B-A3B``) or a few well-known names. Nothing is downloaded and
torch is never imported, so planning works offline and in a second.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.errors import PlanError

__all__ = ["KNOWN_FAMILIES", "MOE_NAME_SHARE", "ModelSize", "estimate_model_size", "hub_cache_dir"]


@dataclass
class ModelSize:
    """How many parameters a model has, and how we know."""

    params: int
    source: str  # e.g. "config.json in /models/x", "model name 'Llama-3.1-8B'"
    exact: bool = False
    active_params: int | None = None  # mixture-of-experts: parameters used per token
    model_type: str | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    vocab_size: int | None = None
    max_positions: int | None = None  # max_position_embeddings from config.json: the longest sequence it attends to

    @property
    def billions(self) -> float:
        return self.params / 1e9

    def describe(self) -> str:
        active = f", {_human_params(self.active_params)} active" if self.active_params else ""
        approx = "" if self.exact else "~"
        return f"{approx}{_human_params(self.params)} parameters{active} ({self.source})"


def estimate_model_size(name_or_path: str, revision: str | None = None) -> ModelSize:
    """Count parameters without loading weights or contacting the Hub.

    Tries, in order: a local folder's ``config.json`` (or an adapter folder's base
    model), the Hugging Face cache, the size in the name (``8B``, ``0.5B``,
    ``135M``, ``8x7B``, ``30B-A3B``), a few well-known names without a size.
    """
    text = name_or_path.strip()
    if not text:
        raise PlanError("the model size could not be determined: no model name was given (set model.name)")
    path = Path(text).expanduser()
    if path.is_file() and path.name == "config.json":
        path = path.parent
    explicit_path = text.startswith((".", "/", "~")) or path.is_dir()
    unusable: PlanError | None = None
    try:
        if path.is_dir():
            size = _size_from_folder(path, revision)
            if size is not None:
                return size
        elif not explicit_path:
            cached = _hub_cache_config(text, revision)
            if cached is not None:
                config, where = cached
                return _size_from_config(config, f"Hugging Face cache (config.json, {where})")
    except PlanError as exc:
        unusable = exc  # a config.json we cannot use: the name may still tell
    from_name = _size_from_name(path.name if path.is_dir() else text)
    if from_name is not None:
        if unusable is not None:
            from_name.source += " (config.json was not usable)"
        return from_name
    if unusable is not None:
        raise unusable
    if path.is_dir():
        where = f"the folder {path} has no config.json"
    elif explicit_path:
        where = f"there is no folder {path}"
    else:
        where = f"{text!r} is not a local folder and is not in the Hugging Face cache ({hub_cache_dir()})"
    raise PlanError(
        f"the model size could not be determined: {where}, and its name carries no size. "
        "Point model.name at a local folder with config.json, download the model's config once "
        "(hf download <id> config.json), or use a name with the size such as unsloth/Llama-3.1-8B-Instruct."
    )


def _size_from_folder(path: Path, revision: str | None) -> ModelSize | None:
    config_file = path / "config.json"
    if config_file.is_file():
        return _size_from_config(_read_json(config_file), f"config.json in {path}")
    adapter = path / "adapter_config.json"
    if adapter.is_file():
        base = _read_json(adapter).get("base_model_name_or_path")
        if isinstance(base, str) and base.strip() and Path(base).expanduser().resolve() != path.resolve():
            size = estimate_model_size(base, revision)
            size.source = f"base model {base} of the adapter in {path}: {size.source}"
            return size
    return None


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{file} could not be read as JSON ({exc}); fix or re-download it") from None
    if not isinstance(data, dict):
        raise PlanError(f"{file} is not a JSON object; fix or re-download it")
    return data


def hub_cache_dir() -> Path:
    """The folder huggingface_hub caches models in, by the same environment variables it reads."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _hub_cache_config(repo_id: str, revision: str | None) -> tuple[dict[str, Any], str] | None:
    """(config, description) for a cached ``repo_id``: the revision asked for, else main, else the newest."""
    repo = hub_cache_dir() / ("models--" + repo_id.strip("/").replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    wanted = revision or "main"
    ref = repo / "refs" / wanted
    commit = ref.read_text().strip() if ref.is_file() else wanted
    chosen = snapshots / commit / "config.json"
    if not chosen.is_file():
        if revision:
            return None  # the asked-for revision is not cached; do not substitute another
        found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        if not found:
            return None
        chosen = found[0]
    return _read_json(chosen), f"snapshot {chosen.parent.name[:12]}"


# Per model_type: (lm_head tied by default, q/k/v bias, o bias, norms per layer, q/k norm)
_ARCHITECTURES: dict[str, tuple[bool, bool, bool, int, bool]] = {
    "llama": (False, False, False, 2, False),
    "mistral": (False, False, False, 2, False),
    "mixtral": (False, False, False, 2, False),
    "qwen2": (False, True, False, 2, False),
    "qwen2_moe": (False, True, False, 2, False),
    "qwen3": (False, False, False, 2, True),
    "qwen3_moe": (False, False, False, 2, True),
    "gemma": (True, False, False, 2, False),
    "gemma2": (True, False, False, 4, False),
    "gemma3_text": (True, False, False, 4, True),
    "phi3": (False, False, False, 2, False),
}


def _size_from_config(config: dict[str, Any], source: str) -> ModelSize:
    """Closed-form count for decoder-only transformers (training.md §4.1).

    Exact for the architectures in ``_ARCHITECTURES`` (checked against
    transformers' own count); any other ``model_type`` gets the same formula
    with no biases and two norms per layer, labelled approximate.
    """
    nested = config.get("text_config")
    if "hidden_size" not in config and isinstance(nested, dict) and "hidden_size" in nested:
        size = _size_from_config({**nested, "model_type": nested.get("model_type", config.get("model_type"))}, source)
        size.exact = False
        size.source += " (text model only; the vision part is not counted)"
        return size
    model_type = str(config.get("model_type") or "")
    try:
        h = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        vocab = int(config["vocab_size"])
    except (KeyError, TypeError, ValueError):
        raise PlanError(
            f"{source}: needs hidden_size, num_hidden_layers, num_attention_heads and vocab_size to count "
            "parameters; use a name with the size (e.g. ...-8B) instead"
        ) from None
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or h // heads)
    inter = int(config.get("intermediate_size") or 4 * h)
    known = model_type in _ARCHITECTURES
    tie_default, qkv_bias, o_bias, norms, qk_norm = _ARCHITECTURES.get(model_type, (False, False, False, 2, False))
    if model_type in ("llama", "qwen3", "qwen3_moe") and config.get("attention_bias"):
        qkv_bias = o_bias = True
    tied = bool(config.get("tie_word_embeddings", tie_default))

    q, kv = heads * head_dim, kv_heads * head_dim
    attention = h * q + 2 * h * kv + q * h + (q + 2 * kv if qkv_bias else 0) + (h if o_bias else 0)
    attention += 2 * head_dim if qk_norm else 0
    dense_mlp = 3 * h * inter + (2 * inter + h if config.get("mlp_bias") else 0)

    experts = int(config.get("num_local_experts") or config.get("num_experts") or 0)
    expert_inter = int(config.get("moe_intermediate_size") or inter)
    top_k = int(config.get("num_experts_per_tok") or 0)
    shared_inter = int(config.get("shared_expert_intermediate_size") or 0)
    sparse_step = int(config.get("decoder_sparse_step") or 1)
    dense_only = set(config.get("mlp_only_layers") or [])
    one_expert = 3 * h * expert_inter
    shared = 3 * h * shared_inter + h if shared_inter else 0

    total = vocab * h + h + (0 if tied else vocab * h)
    unused_experts = 0
    for layer in range(layers):
        total += attention + norms * h
        if experts and layer not in dense_only and (layer + 1) % sparse_step == 0:
            total += experts * one_expert + h * experts + shared
            unused_experts += max(experts - top_k, 0) * one_expert if top_k else 0
        else:
            total += dense_mlp
    if experts and not known:
        source += f" (approximate: model_type {model_type or 'unknown'!r} counted with the generic mixture-of-experts formula)"
    elif not known:
        source += f" (approximate: model_type {model_type or 'unknown'!r} counted with the generic formula)"
    return ModelSize(
        params=total,
        source=source,
        exact=known,
        active_params=total - unused_experts if unused_experts else None,
        model_type=model_type or None,
        hidden_size=h,
        num_layers=layers,
        vocab_size=vocab,
        max_positions=_positive_int(config.get("max_position_embeddings")),
    )


def _positive_int(value: Any) -> int | None:
    """A config value that must be a positive whole number, or None when it is absent or unusable."""
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


_UNITS = {"m": 1e6, "b": 1e9, "t": 1e12}
_NUMBER = r"(\d+(?:\.\d+)?)"
_EDGE_BEFORE = r"(?<![A-Za-z0-9.])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"
_MOE_NAME = re.compile(_EDGE_BEFORE + r"(\d+)x" + _NUMBER + r"([mbt])" + _EDGE_AFTER, re.IGNORECASE)
_DENSE_NAME = re.compile(_EDGE_BEFORE + _NUMBER + r"([mbt])" + _EDGE_AFTER, re.IGNORECASE)
_ACTIVE_NAME = re.compile(r"(?<![A-Za-z0-9.])a" + _NUMBER + r"([mb])" + _EDGE_AFTER, re.IGNORECASE)
_EFFECTIVE_NAME = re.compile(r"(?<![A-Za-z0-9.])e" + _NUMBER + r"b" + _EDGE_AFTER, re.IGNORECASE)

#: Mixtral-style "8x7B": experts share attention and embeddings, so the total is
#: about 80% of 8 x 7B (Mixtral 8x7B: 46.7B; 8x22B: 141B).
MOE_NAME_SHARE = 0.82

#: Names that carry no size, checked in this order (first match wins).
KNOWN_FAMILIES: tuple[tuple[str, float], ...] = (
    ("phi-4-mini", 3.8e9),
    ("phi-4", 14.7e9),
    ("phi-3.5-mini", 3.8e9),
    ("phi-3-mini", 3.8e9),
    ("phi-3-medium", 14.0e9),
    ("mistral-nemo", 12.2e9),
    ("tinyllama", 1.1e9),
    ("gpt2-xl", 1.56e9),
    ("gpt2-large", 774e6),
    ("gpt2-medium", 355e6),
    ("gpt2", 124e6),
)


def _size_from_name(name: str) -> ModelSize | None:
    """Read the size from a model name; MoE totals and "E4B" effective sizes are approximate."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    moe = _MOE_NAME.search(base)
    if moe:
        per_expert = float(moe.group(2)) * _UNITS[moe.group(3).lower()]
        params = int(int(moe.group(1)) * per_expert * MOE_NAME_SHARE)
        return ModelSize(params, f"model name '{base}' ({moe.group(0)} experts, approximate)")
    dense = [float(m.group(1)) * _UNITS[m.group(2).lower()] for m in _DENSE_NAME.finditer(base)]
    active = _ACTIVE_NAME.search(base)
    active_params = int(float(active.group(1)) * _UNITS[active.group(2).lower()]) if active else None
    if dense:
        return ModelSize(int(max(dense)), f"model name '{base}'", active_params=active_params)
    effective = _EFFECTIVE_NAME.search(base)
    if effective:
        # Gemma 3n "E2B"/"E4B": effective size; the stored weights are about twice that.
        params = int(2 * float(effective.group(1)) * 1e9)
        return ModelSize(params, f"model name '{base}' (effective size {effective.group(0)}, total about twice that)")
    lowered = base.lower().replace("_", "-")
    for family, params_f in KNOWN_FAMILIES:
        if family in lowered:
            return ModelSize(int(params_f), f"known model family '{family}'")
    return None


def _human_params(params: float | None) -> str:
    """Three significant digits: 135M, 1.5B, 8.03B, 70.6B, 405B."""
    if not params:
        return "?"
    if params >= 1e12:
        return f"{params / 1e12:.3g}T"
    if params >= 1e9:
        return f"{params / 1e9:.3g}B"
    return f"{params / 1e6:.3g}M"
