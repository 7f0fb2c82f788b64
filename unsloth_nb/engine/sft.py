"""Supervised fine-tuning with TRL's SFTTrainer, reporting through events.

Rows are rendered to text with the chat template (as Unsloth's notebooks do), trained with
SFTTrainer, and optionally masked to the assistant turns with Unsloth's
``train_on_responses_only``. A TrainerCallback turns the trainer's logs into ``metrics``,
``progress`` and ``checkpoint`` events and turns ``hooks.should_stop()`` into a clean stop
that leaves a resumable checkpoint.
"""

from __future__ import annotations

import functools
import gc
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.engine.quiet import quiet_dataset_bars
from unsloth_nb.errors import ConfigError

if TYPE_CHECKING:
    from unsloth_nb.config import TrainConfig
    from unsloth_nb.data import PreparedDataset, Row
    from unsloth_nb.engine import EngineHooks

#: ChatML role headers (SmolLM2, Qwen, our tiny model): the fallback when auto-detection fails.
CHATML_PARTS = ("<|im_start|>user\n", "<|im_start|>assistant\n")

#: Logged metrics we forward, under the names the events use.
_METRIC_KEYS = ("loss", "learning_rate", "grad_norm", "epoch")


@dataclass
class TrainOutcome:
    """What the trainer did, in plain values."""

    global_step: int
    total_steps: int
    final_loss: float | None
    stopped: bool
    train_runtime: float
    last_checkpoint: Path | None


def row_renderer(tokenizer: Any) -> Callable[[Row], str]:
    """A function giving the exact text the trainer tokenizes for one normalised row.

    A leading BOS written by the chat template is dropped when the tokenizer adds one
    itself; otherwise Llama-3-style templates would train on a doubled BOS.
    """
    bos = getattr(tokenizer, "bos_token", None) or ""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    strip_bos = bool(bos) and bos_id is not None and bos_id in tokenizer("", add_special_tokens=True)["input_ids"]

    def render(row: Row) -> str:
        if "messages" in row:
            text = tokenizer.apply_chat_template(row["messages"], tokenize=False, add_generation_prompt=False)
        else:
            text = row["text"]
        if strip_bos and text.startswith(bos):
            text = text[len(bos) :]
        return text

    return render


def build_text_dataset(rows: list[Row], tokenizer: Any) -> Any:
    """A ``datasets.Dataset`` with one ``text`` column, the form SFTTrainer tokenizes itself."""
    from datasets import Dataset

    render = row_renderer(tokenizer)
    return Dataset.from_list([{"text": render(row)} for row in rows])


def checkpoint_dir(output_dir: Path) -> Path:
    """Where resumable checkpoints (``checkpoint-<step>``) live inside a job's output folder."""
    return Path(output_dir) / "checkpoints"


def build_sft_config(config: TrainConfig, output_dir: Path, has_eval: bool, model_dtype: Any, on_gpu: bool) -> Any:
    """Map our TrainArgs onto trl 1.15's SFTConfig (``max_length``, not ``max_seq_length``)."""
    import torch
    from trl import SFTConfig

    train = config.train
    kwargs: dict[str, Any] = {
        "output_dir": str(checkpoint_dir(output_dir)),
        "per_device_train_batch_size": train.batch_size,
        "gradient_accumulation_steps": train.grad_accum,
        "learning_rate": train.lr,
        "warmup_steps": train.warmup_steps,
        "weight_decay": train.weight_decay,
        "lr_scheduler_type": train.scheduler,
        "optim": train.optim,
        "seed": train.seed,
        "logging_steps": train.logging_steps,
        "max_length": train.max_seq_length,
        "dataset_text_field": "text",
        "packing": train.packing,
        "report_to": "none",
        "disable_tqdm": True,
        "save_strategy": "steps" if train.save_steps else "no",
        "use_cpu": not on_gpu,
        # The model already carries its adapters' precision; match autocast to it.
        "bf16": model_dtype == torch.bfloat16,
        "fp16": model_dtype == torch.float16,
    }
    if train.save_steps:
        kwargs["save_steps"] = train.save_steps
    if train.max_steps:
        kwargs["max_steps"] = train.max_steps
    else:
        kwargs["num_train_epochs"] = train.epochs
    if config.lora.gradient_checkpointing == "false":
        kwargs["gradient_checkpointing"] = False
    if has_eval:
        kwargs["per_device_eval_batch_size"] = train.batch_size
        if train.eval_steps:
            kwargs["eval_strategy"] = "steps"
            kwargs["eval_steps"] = train.eval_steps
        else:
            kwargs["eval_strategy"] = "epoch"
    return SFTConfig(**kwargs)


def train(
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    dataset: PreparedDataset,
    output_dir: Path,
    hooks: EngineHooks,
    on_gpu: bool,
    resume_from_checkpoint: str | bool | None = None,
) -> TrainOutcome:
    """Build the trainer, mask prompts if asked, train (or resume), and report as it goes."""
    from trl import SFTTrainer

    resume = _resolve_resume(resume_from_checkpoint, checkpoint_dir(output_dir))
    train_rows = build_text_dataset(dataset.train, tokenizer)
    eval_rows = build_text_dataset(dataset.eval, tokenizer) if dataset.eval else None
    args = build_sft_config(config, output_dir, eval_rows is not None, getattr(model, "dtype", None), on_gpu)
    callback = event_callback(hooks)
    with quiet_dataset_bars():
        trainer = SFTTrainer(
            model=model,
            processing_class=tokenizer,
            train_dataset=train_rows,
            eval_dataset=eval_rows,
            args=args,
            callbacks=[callback],
        )
        _remove_progress_printers(trainer)
        if config.train.train_on_responses_only and any("messages" in row for row in dataset.train):
            mask_prompts(trainer, tokenizer, next(row for row in dataset.train if "messages" in row), hooks)
        if not config.train.packing:
            enforce_max_length(trainer, config.train.max_seq_length, hooks)

    # transformers/accelerate force a full garbage collection when training starts; over the
    # ~500k objects torch and Unsloth leave behind it held an in-kernel job's notebook for
    # 0.25-0.54 s (benchmarks/kernel_responsiveness.py). Freezing them first makes it ~10 ms.
    gc.freeze()
    output = trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    outcome = TrainOutcome(
        global_step=state.global_step,
        total_steps=state.max_steps,
        final_loss=callback.last_loss if callback.last_loss is not None else _float(output.training_loss),
        stopped=callback.stopped,
        train_runtime=float(output.metrics.get("train_runtime", 0.0)),
        last_checkpoint=latest_checkpoint(checkpoint_dir(output_dir)),
    )
    peak, kind = peak_memory_gb()
    summary: dict[str, Any] = {
        "train_runtime": round(outcome.train_runtime, 2),
        "global_step": outcome.global_step,
        "peak_memory_gb": round(peak, 3),
        "memory": kind,
    }
    if outcome.final_loss is not None:
        summary["final_loss"] = outcome.final_loss
    if callback.tokens_seen is not None:
        summary["num_tokens"] = int(callback.tokens_seen)
    hooks.emit("summary", **summary)
    return outcome


def peak_memory_gb() -> tuple[float, str]:
    """Peak memory of this process in GiB: reserved GPU memory as Unsloth's notebooks print it, else RAM.

    ``torch.cuda.max_memory_reserved`` on a GPU; the process's peak resident set
    (``getrusage``, KiB on Linux, bytes on macOS) on a CPU.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_reserved() / 2**30, "GPU reserved"
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak / 2**30 if sys.platform == "darwin" else peak / 2**20), "RAM"


#: Token columns a tokenized training row may carry, cut together when a row is truncated.
_TOKEN_COLUMNS = ("input_ids", "attention_mask", "labels", "completion_mask", "assistant_masks", "token_type_ids")


def enforce_max_length(trainer: Any, max_length: int, hooks: EngineHooks) -> None:
    """Make sure no tokenized row is longer than max_seq_length, and say how many sit at the limit.

    TRL and Unsloth truncate while they tokenize (keeping the start); this checks it
    happened, cuts any row that slipped through the same way, and reports the count so
    it can be compared with what the dataset check promised (``dataset.long_rows``).
    """
    cut_total = 0
    longest = 0
    for name in ("train_dataset", "eval_dataset"):
        rows = getattr(trainer, name, None)
        if rows is None or "input_ids" not in getattr(rows, "column_names", ()):
            continue
        lengths = [len(ids) for ids in rows["input_ids"]]
        over = sum(1 for n in lengths if n > max_length)
        if over:
            columns = [c for c in _TOKEN_COLUMNS if c in rows.column_names]

            def cut(row: dict[str, Any], keep: list[str] = columns) -> dict[str, Any]:
                return {c: row[c][:max_length] for c in keep}

            setattr(trainer, name, rows.map(cut))
        if name == "train_dataset":
            longest = min(max(lengths, default=0), max_length)
            cut_total = sum(1 for n in lengths if n >= max_length)
    hooks.emit(
        "log",
        level="info",
        message=f"Tokenized training rows: longest {longest} tokens; {cut_total} at max_seq_length={max_length}.",
        source="engine",
    )


def latest_checkpoint(folder: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def _resolve_resume(value: str | bool | None, folder: Path) -> str | bool | None:
    """Check the checkpoint exists before the model is in the trainer, with a message that says where we looked."""
    if value is None or value is False:
        return None
    if value is True:
        found = latest_checkpoint(folder)
        if found is None:
            raise ConfigError("resume", f"no checkpoint to resume from in {folder}")
        return str(found)
    path = Path(value)
    if not (path / "trainer_state.json").is_file():
        raise ConfigError("resume", f"{path} is not a training checkpoint (no trainer_state.json)")
    return str(path)


def _remove_progress_printers(trainer: Any) -> None:
    """Our panel and CLI draw progress from events; transformers must not draw its own table or print dicts."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (NotebookProgressCallback, PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


def response_parts(tokenizer: Any, sample: Row) -> tuple[str, str] | None:
    """The (instruction, response) headers of the chat template, or None when they cannot be found.

    Unsloth's auto-detection is tried first; ChatML's headers are the fallback. A part only
    counts if it really occurs in a rendered training row, so a wrong guess never masks a
    whole dataset to nothing.
    """
    rendered = row_renderer(tokenizer)(sample)
    candidates: list[tuple[str, str]] = []
    try:
        from unsloth_zoo.dataset_utils import get_chat_template_parts

        candidates.append(tuple(get_chat_template_parts(tokenizer)))
    except Exception:  # detection is best effort; the fallback and the check below decide
        pass
    candidates.append(CHATML_PARTS)
    for instruction, response in candidates:
        # A detected part may begin with the previous turn's end (Llama 3: "<|eot_id|><|start_header_id|>user..."),
        # which a first turn lacks; the longest tail that still names a role ("<|start_header_id|>user...") delimits turns.
        for pair in itertools.product(_tails(instruction), _tails(response)):
            if _delimits_turns(rendered, *pair):
                return pair
    return None


def _tails(part: str) -> list[str]:
    """``part`` and its suffixes, longest first, cut only at markup or whitespace boundaries
    (never inside a token like ``<|eot_id|>``) and still holding a letter (a role name)."""
    cuts = [i for i in range(len(part)) if i == 0 or part[i] in "<[" or part[i - 1] in ">]\n "]
    return [part[i:] for i in cuts if any(ch.isalpha() for ch in part[i:])]


def _delimits_turns(rendered: str, instruction: str, response: str) -> bool:
    """Both headers are real text (not bare newlines), differ, and a user turn precedes an answer."""
    if not instruction.strip() or not response.strip() or instruction == response:
        return False
    first_user = rendered.find(instruction)
    return first_user >= 0 and rendered.find(response, first_user + len(instruction)) >= 0


def mask_prompts(trainer: Any, tokenizer: Any, sample: Row, hooks: EngineHooks) -> bool:
    """Apply Unsloth's train_on_responses_only, or warn and train on full text when it cannot work."""
    parts = response_parts(tokenizer, sample)
    if parts is None:
        _warn(hooks, "Could not find the user/assistant markers of this chat template; training on the full text.")
        return False
    from unsloth.chat_templates import train_on_responses_only

    original_train, original_eval = trainer.train_dataset, trainer.eval_dataset
    try:
        train_on_responses_only(trainer, instruction_part=parts[0], response_part=parts[1])
    except Exception as exc:
        trainer.train_dataset, trainer.eval_dataset = original_train, original_eval
        _warn(hooks, f"train_on_responses_only failed ({exc}); training on the full text.")
        return False
    if not _has_targets(trainer.train_dataset):
        trainer.train_dataset, trainer.eval_dataset = original_train, original_eval
        _warn(hooks, "Masking the prompts left no tokens to learn from; training on the full text.")
        return False
    hooks.emit("log", level="info", message=f"Training on responses only (after {parts[1]!r}).", source="engine")
    return True


def _has_targets(dataset: Any, sample: int = 256) -> bool:
    """Whether masking left any token to learn from, judged on the first rows (a wrong marker masks all of them)."""
    head = dataset.select(range(min(sample, len(dataset))))
    return any(label != -100 for row in head["labels"] for label in row)


def _warn(hooks: EngineHooks, message: str) -> None:
    hooks.emit("log", level="warning", message=message, source="engine")


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def event_callback(hooks: EngineHooks) -> Any:
    """A TrainerCallback that reports to ``hooks`` (its class is built on first use, so this
    module imports without transformers)."""
    return _event_callback_class()(hooks)


@functools.cache
def _event_callback_class() -> type:
    from transformers import TrainerCallback

    return _make_event_callback(TrainerCallback)


def _make_event_callback(base: type) -> type:
    class _EventCallback(base):
        def __init__(self, hooks: EngineHooks) -> None:
            self.hooks = hooks
            self.stopped = False
            self.last_loss: float | None = None
            self._started = 0.0
            self._start_step = 0
            self._last_tokens: float | None = None
            self._last_time = 0.0
            self.tokens_seen: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._started = self._last_time = time.perf_counter()
            self._start_step = state.global_step
            # A fresh run counts tokens from zero; a resumed one has no baseline until its first log.
            self._last_tokens = 0.0 if state.global_step == 0 else None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            elapsed = time.perf_counter() - self._started
            done = state.global_step - self._start_step
            remaining = max(state.max_steps - state.global_step, 0)
            eta = elapsed / done * remaining if done > 0 else None
            self.hooks.emit(
                "progress",
                step=state.global_step,
                total_steps=state.max_steps,
                eta_seconds=eta,
                elapsed_seconds=elapsed,
            )
            if self.hooks.should_stop():
                self.stopped = True
                control.should_save = True
                control.should_training_stop = True
            elif state.global_step >= state.max_steps:
                # The last step always leaves a checkpoint, so a finished run can be extended.
                control.should_save = True

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" in logs:
                self._emit_train_metrics(state, logs)
            if "eval_loss" in logs:
                data: dict[str, Any] = {"step": state.global_step, "eval_loss": _float(logs["eval_loss"])}
                if "epoch" in logs:
                    data["epoch"] = _float(logs["epoch"])
                self.hooks.emit("metrics", **data)

        def _emit_train_metrics(self, state: Any, logs: dict[str, Any]) -> None:
            data: dict[str, Any] = {"step": state.global_step}
            for key in _METRIC_KEYS:
                if logs.get(key) is not None:
                    data[key] = _float(logs[key])
            now = time.perf_counter()
            tokens = logs.get("num_tokens")
            if tokens is None and getattr(state, "num_input_tokens_seen", None):
                tokens = state.num_input_tokens_seen
            if tokens is not None:
                tokens = float(tokens)
                data["num_tokens"] = int(tokens)
                if self._last_tokens is not None and now > self._last_time and tokens >= self._last_tokens:
                    data["tokens_per_second"] = (tokens - self._last_tokens) / (now - self._last_time)
                self._last_tokens = tokens
                self.tokens_seen = tokens
            self._last_time = now
            data["memory_gb"] = round(peak_memory_gb()[0], 3)
            self.last_loss = data.get("loss")
            self.hooks.emit("metrics", **data)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.hooks.emit("checkpoint", step=state.global_step, path=str(path))

    return _EventCallback
