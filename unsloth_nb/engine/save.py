"""What a run leaves behind: the LoRA adapter, an optional merged 16-bit model, a Hub push.

Also the way back in: reload a saved adapter and ask it a question, which tests, tutorials
and the worker's smoke check all use.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.errors import BackendError

if TYPE_CHECKING:
    from unsloth_nb.config import GenerateConfig, TrainConfig
    from unsloth_nb.engine import EngineHooks

ADAPTER_DIR = "adapter"
MERGED_DIR = "merged_16bit"


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def save_adapter(model: Any, tokenizer: Any, output_dir: Path, hooks: EngineHooks) -> Path:
    """The LoRA weights plus the tokenizer (with its chat template), reloadable on their own."""
    target = Path(output_dir) / ADAPTER_DIR
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    hooks.emit("artifact", name="adapter", path=str(target), bytes=folder_bytes(target), kind="adapter")
    return target


def save_merged(model: Any, tokenizer: Any, output_dir: Path, hooks: EngineHooks) -> Path:
    """Base weights with the adapter folded in, in 16 bit: a plain model any runtime can load."""
    target = Path(output_dir) / MERGED_DIR
    model.save_pretrained_merged(str(target), tokenizer, save_method="merged_16bit")
    hooks.emit("artifact", name="merged_16bit", path=str(target), bytes=folder_bytes(target), kind="merged_16bit")
    return target


def push_to_hub(folder: Path, repo_id: str, private: bool, hooks: EngineHooks) -> str:
    """Upload the adapter folder to a model repository, creating it if needed; returns the repo URL."""
    from unsloth_nb.hub import push_folder

    try:
        url = push_folder(folder, repo_id, private, "Upload LoRA adapter (unsloth-nb)")
    except BackendError as exc:
        raise BackendError(f"{exc}. The adapter is saved in {folder}.") from exc
    hooks.emit("artifact", name="hub", path=str(folder), bytes=folder_bytes(folder), kind="hub", url=url)
    return url


def save_outputs(
    model: Any, tokenizer: Any, config: TrainConfig, output_dir: Path, hooks: EngineHooks, stopped: bool
) -> tuple[Path | None, Path | None]:
    """Write what the config asks for. A stopped run keeps its adapter but skips the merge and the push."""
    from unsloth_nb.config.export import push_repo_ids

    adapter_dir = merged_dir = None
    if config.save.adapter or config.hub.repo_id or stopped:
        adapter_dir = save_adapter(model, tokenizer, output_dir, hooks)
    if stopped:
        if config.save.merged_16bit or config.hub.repo_id:
            hooks.emit("log", level="info", message="Stopped early: skipping the merged model and the Hub push.", source="engine")
        return adapter_dir, None
    if config.save.merged_16bit:
        merged_dir = save_merged(model, tokenizer, output_dir, hooks)
    adapter_repo = push_repo_ids(config.hub).get("adapter")  # hub.push may leave the adapter out
    if adapter_repo and adapter_dir is not None:
        push_to_hub(adapter_dir, adapter_repo, config.hub.private, hooks)
    return adapter_dir, merged_dir


def load_for_inference(adapter_dir: Path, max_seq_length: int = 2048, load_in_4bit: bool = False) -> tuple[Any, Any]:
    """Reload a saved adapter (its base model comes from adapter_config.json) ready to generate."""
    from unsloth_nb.engine.model import cuda_available, hub_token, import_unsloth

    import_unsloth()
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(Path(adapter_dir).resolve()),
        max_seq_length=max_seq_length,
        dtype=None,
        load_in_4bit=bool(load_in_4bit and cuda_available()),
        token=hub_token(),
    )
    FastLanguageModel.for_inference(model)
    return model, tokenizer


def generate(model: Any, tokenizer: Any, question: str, max_new_tokens: int = 64, settings: GenerateConfig | None = None) -> str:
    """The answer to one user turn (or plain-text continuation without a chat template), without the prompt.

    ``settings`` is the job's ``generate:`` section (sampling, length, enable_thinking); without it the answer is
    greedy and ``max_new_tokens`` long at most. A model fresh from training is switched to inference mode first
    (KV cache on, eval); call ``FastLanguageModel.for_training(model)`` to train it further.
    """
    import torch

    from unsloth_nb.engine.generation import GREEDY, decode_answer, sampling_kwargs, template_kwargs

    if settings is None:
        settings = dataclasses.replace(GREEDY, max_new_tokens=max_new_tokens)
    if getattr(model, "training", False):
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)

    if getattr(tokenizer, "chat_template", None):
        encoded = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
            **template_kwargs(tokenizer, settings),
        )
    else:  # a base model trained on plain text: the question is the prompt
        encoded = tokenizer(question, return_tensors="pt")
    encoded = {key: value.to(model.device) for key, value in encoded.items()}
    with torch.no_grad():
        output = model.generate(
            **encoded,
            **sampling_kwargs(settings),
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
    new_tokens = output[0, encoded["input_ids"].shape[1] :]
    return decode_answer(tokenizer, new_tokens)
