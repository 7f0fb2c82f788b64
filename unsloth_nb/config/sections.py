"""The everyday sections of a job: the model, the data, LoRA, the trainer's arguments, saving and the Hub.

Defaults follow Unsloth's notebooks (r=16, alpha=16, dropout 0, lr 2e-4, batch 2 x accumulation 4, warmup 5,
adamw_8bit, linear schedule, seed 3407).
"""

from __future__ import annotations

from dataclasses import dataclass

from unsloth_nb.config.schema import DEFAULT_TARGET_MODULES, knob
from unsloth_nb.errors import ConfigError


@dataclass
class ModelConfig:
    """Which base model to fine-tune and how to load it."""

    name: str = knob("", "Hugging Face model id or local folder (e.g. unsloth/Llama-3.2-1B-Instruct).", flag="--model")
    load_in_4bit: bool = knob(
        True,
        "QLoRA: load the base weights in 4 bit (GPU only; on CPU the model loads in 16 bit).",
        flag="--load-in-4bit",
    )
    dtype: str = knob(
        "auto",
        "Compute dtype; auto picks bfloat16 where supported, else float16.",
        flag="--dtype",
        choices=("auto", "bfloat16", "float16", "float32"),
    )
    chat_template: str | None = knob(
        None,
        "Unsloth chat template name (chatml, llama-3.1, qwen3-instruct, ...); default: the tokenizer's own, else chatml.",
        flag="--chat-template",
    )
    revision: str | None = knob(None, "Model revision (branch, tag or commit) on the Hub.", flag="--revision")
    trust_remote_code: bool = knob(False, "Allow the model repository's own Python code to run.", flag="--trust-remote-code")


@dataclass
class DatasetConfig:
    """Where the training rows come from and how to read them."""

    path: str = knob(
        "",
        "Dataset file (.jsonl, .json, .csv, .parquet), a saved `datasets` folder, a Hub dataset id (org/name or "
        "hf://datasets/org/name), s3://bucket/key (or a prefix of shards), or volume://<network volume id>/path.",
        flag="--dataset",
    )
    split: str = knob("train", "Split to use: of a Hub dataset, or of a `datasets` folder with several splits.", flag="--split")
    config_name: str | None = knob(
        None, "Hub dataset config (subset), as load_dataset's second argument.", flag="--dataset-config"
    )
    revision: str | None = knob(None, "Hub dataset revision (branch, tag or commit).", flag="--dataset-revision")
    mix: list[str] = knob(
        [],
        "Mix several datasets by weight instead of one path: entries `SOURCE=WEIGHT` (a weight such as 3 or 0.75, or "
        "a percentage), or in a file `dataset: [{path: a.jsonl, weight: 3}, {path: org/chat, weight: 1}]`. All rows "
        "of the scarcest source are kept and the others sampled to match the weights.",
        flag="--dataset-mix",
    )
    seed: int = knob(3407, "Seed for sampling and shuffling a dataset mix.", flag="--dataset-seed")

    def section_problems(self) -> list[ConfigError]:
        """A mix and a single path exclude each other; each mix entry must read as SOURCE=WEIGHT."""
        if not self.mix:
            return []
        if self.path.strip():
            return [ConfigError("dataset.mix", "give either dataset.path or dataset.mix (a list of datasets), not both")]
        from unsloth_nb.config.dataset_mix import parse_mix

        try:
            parse_mix(self.mix)
        except ConfigError as exc:
            return [exc]
        return []

    format: str = knob(
        "auto",
        "Row format; auto detects it from the columns.",
        flag="--format",
        choices=("auto", "qa", "alpaca", "sharegpt", "messages", "prompt_completion", "text"),
    )
    columns: dict[str, str] = knob(
        {},
        "Rename columns before detection, e.g. {question: prompt, answer: response} -> "
        "flag form `--columns prompt=question,response=answer` maps our name to yours.",
        flag="--columns",
    )
    eval_path: str | None = knob(
        None, "Separate evaluation file; rows are validated like the training file.", flag="--eval-dataset"
    )
    eval_split: float = knob(
        0.0,
        "Fraction of the training rows held out for evaluation when no eval file is given (0 = none).",
        flag="--eval-split",
        minimum=0.0,
        maximum=0.5,
    )
    max_rows: int | None = knob(None, "Use only the first N valid rows (quick experiments).", flag="--max-rows", minimum=1)
    skip_invalid: bool = knob(False, "Drop invalid rows (and say how many) instead of stopping.", flag="--skip-invalid")
    long_rows: str = knob(
        "truncate",
        "Rows longer than train.max_seq_length: truncate them (rows whose answer would be cut off entirely are "
        "dropped), drop them, or error (refuse the dataset unless skip_invalid).",
        flag="--long-rows",
        choices=("truncate", "drop", "error"),
    )


@dataclass
class LoraConfig:
    """The LoRA adapter, as Unsloth's get_peft_model takes it."""

    r: int = knob(16, "LoRA rank; Unsloth suggests 8, 16, 32, 64 or 128.", flag="--lora-r", minimum=1, maximum=1024)
    alpha: int = knob(16, "LoRA alpha (scaling numerator).", flag="--lora-alpha", minimum=1, aliases=("lora_alpha",))
    dropout: float = knob(
        0.0,
        "LoRA dropout; 0 is Unsloth's optimised path.",
        flag="--lora-dropout",
        minimum=0.0,
        maximum=0.9,
        aliases=("lora_dropout",),
    )
    target_modules: list[str] = knob(list(DEFAULT_TARGET_MODULES), "Modules that get adapters.", flag="--target-modules")
    use_rslora: bool = knob(False, "Rank-stabilised LoRA scaling (alpha / sqrt(r)).", flag="--use-rslora")
    gradient_checkpointing: str = knob(
        "unsloth",
        "Gradient checkpointing: unsloth (less memory), true, or false.",
        flag="--gradient-checkpointing",
        choices=("unsloth", "true", "false"),
    )


@dataclass
class TrainArgs:
    """Optimisation settings, named as in Unsloth's notebooks."""

    epochs: float = knob(
        1.0,
        "Passes over the dataset (ignored when max_steps is set).",
        flag="--epochs",
        minimum=0.0,
        exclusive_minimum=True,
        aliases=("num_train_epochs",),
    )
    max_steps: int | None = knob(None, "Stop after this many optimizer steps (overrides epochs).", flag="--max-steps", minimum=1)
    lr: float = knob(
        2e-4, "Learning rate.", flag="--lr", minimum=0.0, exclusive_minimum=True, maximum=1.0, aliases=("learning_rate",)
    )
    batch_size: int = knob(
        2, "Rows per device per step.", flag="--batch-size", minimum=1, aliases=("per_device_train_batch_size",)
    )
    grad_accum: int = knob(
        4,
        "Gradient accumulation steps (effective batch = batch_size x grad_accum).",
        flag="--grad-accum",
        minimum=1,
        aliases=("gradient_accumulation_steps",),
    )
    warmup_steps: int = knob(5, "Linear warm-up steps.", flag="--warmup-steps", minimum=0)
    weight_decay: float = knob(0.001, "AdamW weight decay.", flag="--weight-decay", minimum=0.0, maximum=1.0)
    scheduler: str = knob(
        "linear",
        "Learning-rate schedule.",
        flag="--scheduler",
        choices=("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"),
        aliases=("lr_scheduler_type",),
    )
    optim: str = knob("adamw_8bit", "Optimizer (adamw_8bit on GPU; the CPU backend swaps in a fused AdamW).", flag="--optim")
    max_seq_length: int = knob(
        2048,
        "Longest sequence in tokens; longer rows are truncated (see dataset.long_rows).",
        flag="--max-seq-length",
        minimum=16,
        maximum=1_048_576,
    )
    train_on_responses_only: bool = knob(True, "Compute the loss on assistant turns only.", flag="--train-on-responses-only")
    packing: bool = knob(False, "Pack short rows together (GPU only).", flag="--packing")
    seed: int = knob(3407, "Random seed.", flag="--seed", minimum=0)
    logging_steps: int = knob(1, "Emit a metrics event every N steps.", flag="--logging-steps", minimum=1)
    save_steps: int | None = knob(
        None, "Save a resumable checkpoint every N steps (default: only at the end and on Stop).", flag="--save-steps", minimum=1
    )
    eval_steps: int | None = knob(
        None, "Evaluate every N steps when there is an eval set (default: once per epoch).", flag="--eval-steps", minimum=1
    )
    resume_from: str | None = knob(
        None,
        "Resume from a checkpoint folder (checkpoint-N), or 'latest' for the newest one in output_dir.",
        flag="--resume-from",
    )


@dataclass
class SaveConfig:
    """What to write when training ends."""

    output_dir: str | None = knob(None, "Where adapters and checkpoints go (default: the job's own folder).", flag="--output-dir")
    adapter: bool = knob(True, "Save the LoRA adapter and tokenizer.", flag="--save-adapter")
    merged_16bit: bool = knob(False, "Also save the base model with the adapter merged, in 16 bit.", flag="--save-merged")
    merged_4bit: bool = knob(
        False,
        "Also save the model merged into its 4-bit weights (a model loaded in 4 bit: GPU only; skipped on CPU, "
        "where the base loads in 16 bit).",
        flag="--save-merged-4bit",
    )
    gguf: list[str] = knob(
        [],
        "GGUF files to write with llama.cpp, e.g. [q4_k_m, q8_0, f16] (needs the gguf extra: pip install 'unsloth-nb[gguf]').",
        flag="--save-gguf",
    )
    ollama: bool = knob(False, "Write an Ollama Modelfile beside the GGUF (chat template and stop tokens).", flag="--save-ollama")
    gguf_pretok: str | None = knob(
        None,
        "llama.cpp pre-tokenizer name to record when llama.cpp does not recognise the tokenizer (e.g. default, "
        "llama-bpe); default: refuse, since a wrong one splits text differently from training.",
        flag="--gguf-pretok",
    )

    def section_problems(self) -> list[ConfigError]:
        from unsloth_nb.config.export import save_problems

        return save_problems(self)


@dataclass
class HubConfig:
    """Pushing the result to the Hugging Face Hub (needs HF_TOKEN in the environment)."""

    repo_id: str | None = knob(None, "Hub repository to push the adapter to, e.g. me/my-lora.", flag="--hub-id")
    private: bool = knob(True, "Create the Hub repository as private.", flag="--hub-private")
    push: list[str] = knob(
        ["adapter"],
        "What goes to the Hub: some of adapter, merged_16bit, merged_4bit, gguf. One goes to repo_id; with "
        "several, the others go to <repo_id>-merged-16bit, -merged-4bit, -GGUF.",
        flag="--hub-push",
    )
    push_checkpoints: bool = knob(
        True,
        "On RunPod without a network volume, also push each checkpoint to the private repo <repo_id>-checkpoints, "
        "so a new pod can resume from it even when this machine is gone.",
        flag="--hub-checkpoints",
    )

    @property
    def checkpoint_repo_id(self) -> str | None:
        """Where checkpoints go on the Hub: a repo of their own, always private (they hold optimizer state)."""
        return f"{self.repo_id}-checkpoints" if self.repo_id and self.push_checkpoints else None
