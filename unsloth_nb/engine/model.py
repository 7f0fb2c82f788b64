"""Load the base model the Unsloth way: tokenizer and length check first, then weights and LoRA.

The tokenizer is loaded and every row is counted with the real chat template before the
weights are read, so an over-long or malformed dataset fails in seconds instead of after
a multi-gigabyte download. ``unsloth`` is always imported before transformers, trl and peft
because it patches them (on a GPU it also warns when the order is wrong).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.errors import BackendError, ConfigError, UnslothNbError

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset, Row, TokenCounter
    from unsloth_nb.engine import EngineHooks

#: Names a local folder is written with; anything else that looks like ``owner/name`` is a Hub id.
_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")

#: Fallback when a tokenizer has no chat template of its own (base models).
DEFAULT_CHAT_TEMPLATE = "chatml"


@dataclass
class LoadedModel:
    """A PEFT-wrapped model ready for SFTTrainer, with the facts the summary event reports."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str
    trainable_params: int
    total_params: int


def import_unsloth() -> Any:
    """Import ``unsloth`` (first, so it can patch transformers/trl/peft) with an actionable error.

    Unsloth refuses to import when a torchvision wheel does not match the installed torch,
    and older releases refuse to run without a GPU; both surface as ImportError or
    NotImplementedError deep inside its import, which says little about the fix.
    """
    # OpenMP threads that spin while waiting starve everything else on a small CPU (the
    # kernel's own thread, the chart, other processes): measured 6x slower steps on a
    # busy 2-core machine. Only effective before torch loads; a user's choice wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from unsloth_nb.engine.quiet import silence_exit_leak_reports

    silence_exit_leak_reports()  # before Triton loads: its exit handlers run first
    try:
        import unsloth
    except ImportError as exc:
        text = str(exc)
        if "torchvision" in text:
            raise BackendError(
                f"Unsloth could not start: {text}\n"
                "Fix: `pip uninstall torchvision` (text models do not need it) or install the torchvision "
                "build that matches your torch; UNSLOTH_SKIP_TORCHVISION_CHECK=1 skips the check."
            ) from exc
        raise BackendError(
            f"Unsloth could not be imported ({text}). Install the training extra: pip install 'unsloth-nb[train]'."
        ) from exc
    except NotImplementedError as exc:
        raise BackendError(
            f"Unsloth could not start: {exc}\n"
            "Unset UNSLOTH_DISABLE_CPU_FALLBACK to train on CPU, or run on a machine with a supported GPU."
        ) from exc
    return unsloth


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def device_name() -> str:
    """``cpu`` or ``cuda (<GPU name>)``, for the summary event and logs."""
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def resolve_model_source(name: str) -> str:
    """An absolute folder path for a local model, else the Hub id unchanged.

    A name written like a path (``./m``, ``/data/m``, ``~/m``) must exist; an ``owner/name``
    that happens not to be a folder here is taken as a Hub id.
    """
    if not name:
        raise ConfigError("model.name", "no model given; pass a Hub id (e.g. unsloth/Llama-3.2-1B-Instruct) or a folder")
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if name.startswith(_PATH_PREFIXES) or path.suffix in (".gguf", ".safetensors", ".bin"):
        raise ConfigError("model.name", f"no model folder at {name}; give a folder with config.json, or a Hub id")
    return name


def hub_token() -> str | None:
    """HF_TOKEN from the environment at the point of use; never stored anywhere."""
    return os.environ.get("HF_TOKEN") or None


def load_tokenizer(config: TrainConfig, source: str) -> Any:
    """The tokenizer alone (seconds), with the chat template the run will train with."""
    import_unsloth()
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source,
            token=hub_token(),
            revision=config.model.revision,
            trust_remote_code=config.model.trust_remote_code,
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            "model.name",
            f"cannot load the tokenizer of {source}: {_first_line(exc)} "
            "(check the id or folder, your network, and HF_TOKEN for gated models)",
        ) from exc
    return tokenizer


def apply_chat_template(tokenizer: Any, name: str | None, conversations: bool = True, hooks: EngineHooks | None = None) -> Any:
    """The configured Unsloth template, else the tokenizer's own, else ChatML (only for conversations:
    a base model trained on plain text keeps its tokenizer, EOS included, untouched)."""
    if not name and (getattr(tokenizer, "chat_template", None) or not conversations):
        return tokenizer
    chosen = name or DEFAULT_CHAT_TEMPLATE
    from unsloth.chat_templates import CHAT_TEMPLATES, get_chat_template

    if chosen not in CHAT_TEMPLATES:
        known = ", ".join(sorted(CHAT_TEMPLATES))
        raise ConfigError("model.chat_template", f"unknown chat template {chosen!r}; Unsloth knows: {known}")
    if hooks is not None and not name:
        hooks.emit("log", level="info", message="The tokenizer has no chat template; using ChatML.", source="engine")
    return get_chat_template(tokenizer, chat_template=chosen)


def token_counter(tokenizer: Any) -> TokenCounter:
    """Counts a row's tokens exactly as the trainer will see them (rendered text, then tokenized)."""
    from unsloth_nb.engine.sft import row_renderer

    render = row_renderer(tokenizer)

    def count(row: Row) -> int:
        text = render(row)
        # +1: trl appends an EOS to every text row that does not already end with one.
        return len(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]) + 1

    return count


def validate_lengths(dataset: PreparedDataset, config: TrainConfig, tokenizer: Any) -> PreparedDataset:
    """Recount every row with the real tokenizer; too-long rows raise DatasetError (or are dropped)."""
    from unsloth_nb import data

    check = getattr(data, "check_lengths", None)
    if check is None:  # the dataset module predates exact counting
        return dataset
    return check(
        _with_origins(dataset),
        config.train.max_seq_length,
        token_counter(tokenizer),
        config.dataset.skip_invalid,
        config.dataset.long_rows,
    )


def _with_origins(dataset: PreparedDataset) -> PreparedDataset:
    """Rows built in code (not read from a file) get ``row N`` origins, so problems still name a place."""
    import dataclasses

    changes: dict[str, Any] = {}
    if len(getattr(dataset, "origins", [])) != len(dataset.train):
        changes["origins"] = [f"row {i + 1}" for i in range(len(dataset.train))]
    if dataset.eval and len(getattr(dataset, "eval_origins", [])) != len(dataset.eval):
        changes["eval_origins"] = [f"eval row {i + 1}" for i in range(len(dataset.eval))]
    return dataclasses.replace(dataset, **changes) if changes else dataset


def load_model(config: TrainConfig, dataset: PreparedDataset, hooks: EngineHooks) -> tuple[LoadedModel, PreparedDataset]:
    """Tokenizer -> length check -> weights -> LoRA -> chat template; emits the summary event.

    Returns the dataset too, because the exact count may drop rows when ``skip_invalid`` is set.
    """
    source = resolve_model_source(config.model.name)
    conversations = any("messages" in row for row in dataset.train)
    tokenizer = apply_chat_template(load_tokenizer(config, source), config.model.chat_template, conversations)
    counted = validate_lengths(dataset, config, tokenizer)
    _report_exact_count(dataset, counted, hooks)
    dataset = counted

    import torch
    from unsloth import FastLanguageModel

    on_gpu = cuda_available()
    load_in_4bit = bool(config.model.load_in_4bit and on_gpu)
    if config.model.load_in_4bit and not on_gpu:
        hooks.emit(
            "log",
            level="info",
            message="4-bit (QLoRA) loading needs a GPU; loading 16-bit weights on CPU.",
            source="engine",
        )
    dtype = None if config.model.dtype == "auto" else getattr(torch, config.model.dtype)
    checkpointing = _gradient_checkpointing(config.lora.gradient_checkpointing)
    hooks.emit("log", level="info", message=f"Loading {config.model.name} on {device_name()}.", source="engine")
    try:
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=source,
            max_seq_length=config.train.max_seq_length,
            dtype=dtype,
            load_in_4bit=load_in_4bit,
            token=hub_token(),
            revision=config.model.revision,
            trust_remote_code=config.model.trust_remote_code,
            use_gradient_checkpointing=checkpointing,
        )
    except UnslothNbError:
        raise
    except OSError as exc:
        raise ConfigError("model.name", f"cannot load {config.model.name}: {_first_line(exc)}") from exc
    model = FastLanguageModel.get_peft_model(
        model,
        r=config.lora.r,
        target_modules=list(config.lora.target_modules),
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        bias="none",
        use_gradient_checkpointing=checkpointing,
        random_state=config.train.seed,
        use_rslora=config.lora.use_rslora,
        max_seq_length=config.train.max_seq_length,
    )
    tokenizer = apply_chat_template(tokenizer, config.model.chat_template, conversations, hooks)
    trainable, total = count_parameters(model)
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        device=device_name(),
        dtype=str(getattr(model, "dtype", "")).replace("torch.", ""),
        trainable_params=trainable,
        total_params=total,
    )
    hooks.emit("summary", model=config.model.name, params=total, device=loaded.device)
    hooks.emit(
        "log",
        level="info",
        message=f"LoRA r={config.lora.r}: {trainable:,} trainable of {total:,} parameters "
        f"({100 * trainable / max(total, 1):.2f}%), {loaded.dtype}{', 4-bit base' if load_in_4bit else ''}.",
        source="engine",
    )
    return loaded, dataset


def _report_exact_count(before: PreparedDataset, after: PreparedDataset, hooks: EngineHooks) -> None:
    """Say what the real tokenizer counted; re-send the dataset summary when rows were dropped."""
    if after is before:
        return
    summary = after.summary
    hooks.emit(
        "log",
        level="info",
        message=f"Counted with the tokenizer: {summary.rows} rows, {summary.tokens:,} tokens, longest {summary.longest_tokens}.",
        source="engine",
    )
    from unsloth_nb.data.records import long_rows_line

    if long_rows_line(summary):
        hooks.emit("log", level="info", message=long_rows_line(summary), source="engine")
    if summary.rows != before.summary.rows or summary.truncated_rows:
        hooks.emit("summary", **summary.to_event())


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit weights count two per stored byte."""
    trainable = total = 0
    for parameter in model.parameters():
        count = parameter.numel()
        if parameter.__class__.__name__ == "Params4bit":
            count *= 2
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total


def _gradient_checkpointing(value: str) -> bool | str:
    choices: dict[str, bool | str] = {"unsloth": "unsloth", "true": True, "false": False}
    return choices[value]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
