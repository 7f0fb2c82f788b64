"""TrainConfig: every knob of a fine-tuning job, validated once.

The magic, the panel, the CLI and the Python API all build a :class:`TrainConfig`
through :meth:`TrainConfig.from_dict` (YAML, JSON and CLI flags are turned into
a dict first), so there is one schema and one set of error messages. Each field
carries its own help text and CLI flag in ``metadata``; the CLI and the magic
generate their flags from it, which keeps documentation and parsing in step.

Defaults follow Unsloth's notebooks (r=16, alpha=16, dropout 0, lr 2e-4,
batch 2 x accumulation 4, warmup 5, adamw_8bit, linear schedule, seed 3407).
No field holds a secret: tokens come from the environment at the point of use.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from unsloth_nb.errors import ConfigError, raise_all, set_field

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

#: Keys that look like secrets. A config that carries one is refused: secrets
#: live in the environment so that saved configs and notebooks never hold them.
SECRET_KEY_PATTERN = re.compile(r"(token|api_key|apikey|secret|password)$", re.IGNORECASE)

Placement = Literal["auto", "local", "runpod"]


def knob(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    aliases: tuple[str, ...] = (),
) -> Any:
    """Declare a config field with the facts the CLI, the magic and validation need."""
    meta = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "aliases": aliases,
    }
    if isinstance(default, (list, dict, tuple)):
        frozen = default
        return field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    return field(default=default, metadata=meta)


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

    path: str = knob("", "Dataset file (.jsonl, .json, .csv, .parquet) or a saved `datasets` folder.", flag="--dataset")
    split: str = knob("train", "Split to use when the path is a `datasets` folder with several splits.", flag="--split")
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


@dataclass
class HubConfig:
    """Pushing the result to the Hugging Face Hub (needs HF_TOKEN in the environment)."""

    repo_id: str | None = knob(None, "Hub repository to push the adapter to, e.g. me/my-lora.", flag="--hub-id")
    private: bool = knob(True, "Create the Hub repository as private.", flag="--hub-private")
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


@dataclass
class RunPodConfig:
    """How a RunPod pod is chosen and bounded (needs RUNPOD_API_KEY in the environment)."""

    gpus: list[str] = knob(
        [], "GPU type ids in order of preference (default: the planner's list for the model size).", flag="--gpus"
    )
    cloud_type: str = knob("SECURE", "Cloud to rent from first.", flag="--cloud-type", choices=("SECURE", "COMMUNITY", "ALL"))
    allow_community: bool = knob(False, "Fall back to COMMUNITY cloud when SECURE has no stock.", flag="--allow-community")
    max_cost_usd: float | None = knob(
        None,
        "Stop the pod (saving what was trained) when the job has cost this much.",
        flag="--max-cost",
        minimum=0.0,
        exclusive_minimum=True,
    )
    confirm_above_usd: float = knob(
        1.0,
        "Ask before renting when the plan's estimated cost (capped by max_cost_usd) is above this, or unknown; "
        "0 always asks. --yes never asks.",
        flag="--confirm-above",
        minimum=0.0,
    )
    max_runtime: float = knob(
        4 * 3600.0,
        "Longest the pod may run, in seconds or with a unit (90m, 2h).",
        flag="--max-runtime",
        minimum=60.0,
    )
    image: str = knob(
        "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404",
        "Container image; it needs CUDA and PyTorch. The pod installs the rest at start, never replacing the image's torch.",
        flag="--image",
    )
    min_cuda_version: str | None = knob(
        None,
        "Only hosts whose driver supports at least this CUDA version, e.g. 12.8 (unset: read from the image tag).",
        flag="--min-cuda",
    )
    container_disk_gb: int | None = knob(
        None,
        "Container disk in GB (unset: sized from the model, the exports and the checkpoints; the plan shows it).",
        flag="--container-disk",
        minimum=10,
    )
    volume_id: str | None = knob(None, "Network volume to keep checkpoints on across pods.", flag="--network-volume")
    resume_on_loss: bool = knob(
        True,
        "When the pod is lost (evicted, its worker died) after a checkpoint was saved, continue from that "
        "checkpoint (on a new pod if needed) instead of failing the job.",
        flag="--resume-on-loss",
    )
    interruptible: bool = knob(
        False,
        "Rent spot (interruptible) capacity at RunPod's spot price: cheaper, but RunPod may evict the pod; the job "
        "then continues on a new pod from its last checkpoint. Uses RunPod's GraphQL API (REST v2 has no spot pods).",
        flag="--interruptible",
    )
    ready_timeout: float = knob(
        20 * 60.0,
        "How long a pod may take to become ready before the next GPU is tried (seconds or 20m).",
        flag="--ready-timeout",
        minimum=10.0,
    )


#: The judge's default model: OpenAI's gpt-5-mini, a current, inexpensive model of another family than the
#: Claude teacher (self-preference bias), strong enough for pairwise verdicts on short answers.
DEFAULT_JUDGE_MODEL = "gpt-5-mini"
JUDGE_PROVIDERS = ("openai", "openai-compatible", "anthropic")


@dataclass
class JudgeConfig:
    """An LLM judge compares the fine-tuned model with its base on held-out questions, after training.

    A ``judge:`` section turns it on (``enabled`` defaults to true when the section is given). The judge runs
    on this machine only (its key, OPENAI_API_KEY or ANTHROPIC_API_KEY, never goes to a pod).
    """

    enabled: bool = knob(False, "Evaluate with an LLM judge after training (a judge: section turns it on).", flag="--judge")
    provider: str = knob(
        "openai",
        "Judge API: openai (OPENAI_API_KEY), anthropic (ANTHROPIC_API_KEY) or openai-compatible (any server at base_url).",
        flag="--judge-provider",
        choices=JUDGE_PROVIDERS,
    )
    model: str = knob(DEFAULT_JUDGE_MODEL, "Judge model id (default gpt-5-mini).", flag="--judge-model")
    base_url: str | None = knob(
        None,
        "Base URL of the judge API (required for openai-compatible, e.g. http://localhost:8000/v1).",
        flag="--judge-base-url",
    )
    eval_path: str | None = knob(
        None,
        "File of held-out questions (any dataset format; answers are shown to the judge as references). "
        "Default: dataset.eval_path, else the holdout rows.",
        flag="--judge-eval",
    )
    holdout: float = knob(
        0.1,
        "Without an eval file: rows held out of training for the judge; a fraction (<1) or a count (>=1).",
        flag="--judge-holdout",
        minimum=0.0,
    )
    max_questions: int | None = knob(None, "Judge at most this many held-out questions.", flag="--judge-max-questions", minimum=1)
    max_new_tokens: int = knob(
        256, "Longest answer generated per question (greedy decoding).", flag="--judge-max-new-tokens", minimum=1, maximum=8192
    )
    batch_size: int = knob(8, "Questions answered together in one generate call.", flag="--judge-batch-size", minimum=1)
    max_cost_usd: float | None = knob(
        None, "Stop judging at this spend; rows not judged are reported as such.", flag="--judge-max-cost", minimum=0.0
    )
    confirm_above_usd: float = knob(
        1.0,
        "Ask before judging when the estimated cost (capped by max_cost_usd) is above this, or unknown; 0 always asks.",
        flag="--judge-confirm-above",
        minimum=0.0,
    )
    concurrency: int = knob(
        8, "Judge requests in flight at once (halved on 429, grows back).", flag="--judge-concurrency", minimum=1
    )
    timeout: float = knob(
        120.0, "Seconds before one judge request is abandoned and retried.", flag="--judge-timeout", minimum=1.0
    )
    rubric: str | None = knob(
        None, "Your own judging prompt (a copy of unsloth_nb/evaluate/rubric.md, edited).", flag="--judge-rubric"
    )
    prices: dict[str, str] = knob(
        {},
        "Price overrides, USD per million tokens input/output, e.g. {my-model: 0/0, gpt-5-mini: 0.25/2}.",
        flag="--judge-prices",
    )


@dataclass
class TrainConfig:
    """One fine-tuning job. Build it with :meth:`from_dict`, :meth:`from_file` or keyword arguments."""

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainArgs = field(default_factory=TrainArgs)
    save: SaveConfig = field(default_factory=SaveConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    runpod: RunPodConfig = field(default_factory=RunPodConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    placement: str = knob(
        "auto",
        "Where to train: auto (decided by the plan), local (this machine) or runpod.",
        flag="--placement",
        choices=("auto", "local", "runpod"),
    )

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build and validate from plain data (parsed YAML/JSON, or flags turned into a dict).

        ``model`` and ``dataset`` may be given as plain strings. Unknown keys are
        errors: a typo must not be silently ignored.
        """
        config, errors = cls.checked(data)
        raise_all(errors)
        return config

    @classmethod
    def checked(cls, data: Mapping[str, Any]) -> tuple[TrainConfig, list[ConfigError]]:
        """Every mistake in ``data`` at once, and the config it describes with each bad field at its default.

        The config lets the dataset and model checks run in the same pass, so a user
        sees every problem of a job together instead of one per run.
        """
        errors: list[ConfigError] = []
        if not isinstance(data, Mapping):
            return cls(), [ConfigError("config", f"expected a mapping of fields, got {type(data).__name__}")]
        # Unsloth's and TRL's own names (model_name, learning_rate, bias: "none", ...): see config_aliases.
        from unsloth_nb.config_aliases import normalise

        data, alias_errors = normalise(data)
        errors.extend(alias_errors)
        explicit: set[str] = set()
        config = _build(cls, _judge_section_enables(dict(data)), "", errors, explicit)
        config.explicit = frozenset(explicit)
        config._clamp_defaults()
        problems = config.problems()
        for error in problems:  # later checks (data, model, plan) must not trip over a value already refused
            config._reset(error.field or "")
        return config, errors + problems

    def _reset(self, path: str) -> None:
        """Put a field back to its default (in the config that the other checks of a refused job read)."""
        spec = next((spec for spec in field_specs() if spec.path == path), None)
        if spec is None:
            return
        *sections, leaf = path.split(".")
        node: Any = self
        for part in sections:
            node = getattr(node, part)
        setattr(node, leaf, spec.default() if callable(spec.default) else spec.default)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Load a YAML or JSON file (chosen by suffix; YAML is a superset of JSON)."""
        return cls.from_dict(load_config_file(path))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<config>") -> TrainConfig:
        return cls.from_dict(parse_yaml(text, source))

    def merged(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """A new config with ``overrides`` (nested dict or dotted keys) applied on top."""
        data = self.user_data()
        deep_update(data, expand_dotted(overrides))
        return TrainConfig.from_dict(data)

    # ------------------------------------------------------------------ what the user chose
    @property
    def explicit(self) -> frozenset[str] | None:
        """Paths of the fields the user gave (None: not known, so every field counts as given)."""
        return self.__dict__.get("_explicit")

    @explicit.setter
    def explicit(self, paths: frozenset[str] | None) -> None:
        self.__dict__["_explicit"] = paths

    def user_set(self, path: str) -> bool:
        """Whether the user chose this field's value (a default they never set may be adjusted, never refused)."""
        return self.explicit is None or path in self.explicit

    def user_data(self) -> dict[str, Any]:
        """The fields the user chose, as nested data (all of them when that is not known)."""
        data = self.to_dict()
        if self.explicit is None:
            return data
        flat = {spec.path: _lookup(data, spec.path) for spec in field_specs() if spec.path in self.explicit}
        return expand_dotted(flat)

    def _clamp_defaults(self) -> None:
        """Adjust defaults that contradict what the user chose; a contradiction of the user's own is refused later."""
        train = self.train
        if not self.user_set("train.warmup_steps") and train.max_steps and train.warmup_steps >= train.max_steps:
            train.warmup_steps = train.max_steps // 10  # a tenth of a short run, as a warm-up ratio of 0.1 would be

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """Plain data, fit for JSON and YAML. Holds no secrets because no field is one."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check each field, then the rules that join several fields; raise every mistake together."""
        raise_all(self.problems())

    def problems(self) -> list[ConfigError]:
        """Every field whose value is not allowed, and every rule between fields that is broken."""
        errors: list[ConfigError] = []
        for prefix, section in self._sections():
            errors += _section_problems(section, prefix)
        if not self.model.name.strip():
            errors.append(
                ConfigError(
                    "model.name",
                    f"no model given: {set_field('model.name')}, a Hub id such as unsloth/Llama-3.2-1B-Instruct "
                    "or a local folder",
                )
            )
        if not self.dataset.path.strip():
            errors.append(
                ConfigError(
                    "dataset.path",
                    f"no dataset given: {set_field('dataset.path')}, a .jsonl, .json, .csv or .parquet file or a datasets folder",
                )
            )
        if self.dataset.eval_path and self.dataset.eval_split:
            errors.append(
                ConfigError("dataset.eval_split", "give either an eval file (eval_path) or an eval_split fraction, not both")
            )
        if self.hub.repo_id is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.hub.repo_id):
            errors.append(ConfigError("hub.repo_id", f"{self.hub.repo_id!r} is not of the form owner/name"))
        if self.train.warmup_steps and self.train.max_steps and self.train.warmup_steps > self.train.max_steps:
            errors.append(
                ConfigError(
                    "train.warmup_steps",
                    f"{self.train.warmup_steps} warm-up steps exceed max_steps={self.train.max_steps}",
                )
            )
        errors += _judge_problems(self.judge)
        if not self.lora.target_modules:
            errors.append(
                ConfigError(
                    "lora.target_modules",
                    "at least one module is needed (Unsloth's default is all attention and MLP projections)",
                )
            )
        return errors

    def _sections(self) -> list[tuple[str, Any]]:
        return [
            (f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if dataclasses.is_dataclass(getattr(self, f.name))
        ] + [("", self)]

    @property
    def effective_batch_size(self) -> int:
        return self.train.batch_size * self.train.grad_accum


def _judge_section_enables(data: dict[str, Any]) -> dict[str, Any]:
    """A ``judge:`` section means "evaluate": ``judge: {model: x}`` enables it unless it says ``enabled: false``."""
    section = data.get("judge")
    if isinstance(section, bool):
        data["judge"] = {"enabled": section}
    elif isinstance(section, Mapping) and "enabled" not in section:
        data["judge"] = {**section, "enabled": True}
    return data


def _judge_problems(judge: JudgeConfig) -> list[ConfigError]:
    """Every mistake in an enabled ``judge:`` section (none when it is off)."""
    if not judge.enabled:
        return []
    errors: list[ConfigError] = []
    if judge.provider == "openai-compatible" and not judge.base_url:
        errors.append(
            ConfigError("judge.base_url", "an openai-compatible judge needs the server's URL, e.g. http://localhost:8000/v1")
        )
    if judge.base_url is not None and not re.match(r"^https?://[^\s/]+", judge.base_url):
        errors.append(ConfigError("judge.base_url", f"{judge.base_url!r} is not an http(s) URL"))
    if not judge.model.strip():
        errors.append(
            ConfigError("judge.model", "no judge model given; e.g. gpt-5-mini (openai) or claude-haiku-4-5 (anthropic)")
        )
    if judge.holdout >= 1 and not float(judge.holdout).is_integer():
        errors.append(ConfigError("judge.holdout", f"{judge.holdout:g} is neither a fraction below 1 nor a whole number of rows"))
    if 0.5 < judge.holdout < 1:
        errors.append(
            ConfigError(
                "judge.holdout", f"holding out {judge.holdout:.0%} of the rows leaves too few to train on; use at most 0.5"
            )
        )
    from unsloth_nb.llm.prices import parse_price

    for model, price in judge.prices.items():
        try:
            parse_price(price, f"judge.prices.{model}")
        except ConfigError as exc:
            errors.append(exc)
    return errors


# ---------------------------------------------------------------------- schema walking
@dataclass(frozen=True)
class FieldSpec:
    """One leaf field of the schema: its dotted path, type and metadata."""

    path: str
    type: Any
    default: Any
    help: str
    flag: str | None
    choices: tuple[Any, ...] | None
    minimum: float | None
    maximum: float | None

    @property
    def base_type(self) -> Any:
        return _strip_optional(self.type)[0]

    @property
    def optional(self) -> bool:
        return _strip_optional(self.type)[1]


def field_specs(cls: type = TrainConfig, prefix: str = "") -> list[FieldSpec]:
    """Every leaf field of the schema, in declaration order (drives CLI flags and docs)."""
    specs: list[FieldSpec] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        path = f"{prefix}{f.name}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            specs += field_specs(hint, prefix=f"{path}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]  # no default: the factory is set
        m = f.metadata
        specs.append(
            FieldSpec(path, hint, default, m.get("help", ""), m.get("flag"), m.get("choices"), m.get("minimum"), m.get("maximum"))
        )
    return specs


_FLAGS: dict[str, str] = {}


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _build(cls: type, data: dict[str, Any], prefix: str, errors: list[ConfigError], explicit: set[str]) -> Any:
    """The dataclass ``cls`` from ``data``; a bad field is noted in ``errors`` and keeps its default."""
    hints = typing.get_type_hints(cls)
    fields_by_name = {f.name: f for f in dataclasses.fields(cls)}
    alias_to_name = {a: f.name for f in dataclasses.fields(cls) for a in f.metadata.get("aliases", ())}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key_str = str(key)
        name = alias_to_name.get(key_str, key_str)
        where = f"{prefix}{key_str}"
        if SECRET_KEY_PATTERN.search(key_str):
            errors.append(
                ConfigError(
                    where,
                    "secrets are never part of a config (saved configs and notebooks would leak them); "
                    "set HF_TOKEN, RUNPOD_API_KEY, OPENAI_API_KEY or ANTHROPIC_API_KEY in the environment instead",
                )
            )
            continue
        if name not in fields_by_name:
            errors.append(ConfigError(where, _unknown_field(key_str, prefix, list(fields_by_name), list(alias_to_name))))
            continue
        if name in kwargs:
            errors.append(ConfigError(where, f"given twice (as {name} and an alias)"))
            continue
        hint = hints[name]
        path = f"{prefix}{name}"
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if isinstance(value, str) and name in ("model", "dataset"):
                value = {"name" if name == "model" else "path": value}
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                errors.append(ConfigError(path, f"expected a mapping of {hint.__name__} fields, got {value!r}"))
                continue
            kwargs[name] = _build(hint, dict(value), f"{path}.", errors, explicit)
            continue
        try:
            kwargs[name] = coerce(value, hint, path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        explicit.add(path)
    return cls(**kwargs)


def _unknown_field(key: str, prefix: str, names: list[str], aliases: list[str]) -> str:
    """ "unknown field", with the closest name here, or the section where a field of that name lives."""
    close = difflib.get_close_matches(key, [*names, *aliases], n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {prefix}{close[0]}?"
    elsewhere = [spec.path for spec in field_specs() if spec.path.rsplit(".", 1)[-1] == key and not spec.path.startswith(prefix)]
    if not elsewhere:
        leaves = {spec.path.rsplit(".", 1)[-1]: spec.path for spec in field_specs()}
        elsewhere = [leaves[m] for m in difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.75)]
    if elsewhere:
        return f"unknown field; did you mean {elsewhere[0]}?"
    return f"unknown field; allowed here: {', '.join(sorted(names))}"


def flag_of(path: str) -> str | None:
    """The command-line flag of a config field (``lora.r`` -> ``--lora-r``), or None."""
    return _FLAGS.get(path)


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
_DURATION_FIELDS = {"runpod.max_runtime", "runpod.ready_timeout"}


def coerce(value: Any, hint: Any, path: str) -> Any:
    """Turn YAML/JSON/flag values into the field's type, or say why not.

    Strings are accepted for numbers and booleans because CLI flags are strings
    and PyYAML reads ``2e-4`` (no dot) as a string.
    """
    base, optional = _strip_optional(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and optional):
        if optional:
            return None
        raise ConfigError(path, "a value is required")
    if path in _DURATION_FIELDS and isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ConfigError(path, f"{value!r} is not a duration; use seconds or a unit such as 90m or 2h")
        return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "").lower() or None]
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "0", "off"):
            return False
        raise ConfigError(path, f"expected true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool):
            raise ConfigError(path, f"expected a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(path, f"expected a whole number, got {value!r}")
    if base is float:
        if isinstance(value, bool):
            raise ConfigError(path, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(path, f"expected a number, got {value!r}")
    if base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(path, f"expected text, got {value!r}")
    origin = typing.get_origin(base)
    if origin is list:
        if isinstance(value, str):
            value = _split_list(value)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {value!r}")
        return [coerce(v, typing.get_args(base)[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            pairs = [p for p in value.split(",") if p.strip()]
            if not all("=" in p for p in pairs):
                raise ConfigError(path, f"expected name=value pairs separated by commas, got {value!r}")
            value = dict(p.split("=", 1) for p in pairs)
            value = {k.strip(): v.strip() for k, v in value.items()}
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    raise ConfigError(path, f"unsupported value {value!r}")  # pragma: no cover - schema bug


def _split_list(text: str) -> list[str]:
    """``a,b`` -> ``[a, b]``; a pasted list (``[a, b]``, ``['a', "b"]``) reads the same."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = (part.strip().strip("'\"").strip() for part in text.split(","))
    return [part for part in parts if part]


def _section_problems(section: Any, prefix: str) -> list[ConfigError]:
    errors: list[ConfigError] = []
    hints = typing.get_type_hints(type(section))
    for f in dataclasses.fields(section):
        if dataclasses.is_dataclass(hints[f.name]):
            continue
        value = getattr(section, f.name)
        path = f"{prefix}.{f.name}" if prefix else f.name
        m = f.metadata
        if value is None:
            continue
        choices = m.get("choices")
        if choices and value not in choices:
            errors.append(ConfigError(path, f"{value!r} is not one of: {', '.join(map(str, choices))}"))
            continue
        lo, hi = m.get("minimum"), m.get("maximum")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if lo is not None and (value < lo or (m.get("exclusive_minimum") and value == lo)):
                rel = "greater than" if m.get("exclusive_minimum") else "at least"
                errors.append(ConfigError(path, f"must be {rel} {lo:g}, got {value:g}"))
            elif hi is not None and value > hi:
                errors.append(ConfigError(path, f"must be at most {hi:g}, got {value:g}"))
    return errors


# ---------------------------------------------------------------------- files and dicts
def parse_yaml(text: str, source: str = "<config>") -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError("config", f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{source}: expected a mapping of fields at the top level")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("config", f"{p}: no such file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ConfigError("config", f"{p}: expected a JSON object at the top level")
        return data
    return parse_yaml(text, str(p))


_SHORTHAND = {"model": "name", "dataset": "path"}


def expand_dotted(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"lora.r": 8}`` -> ``{"lora": {"r": 8}}``; plain nested dicts pass through.

    ``model`` and ``dataset`` may be plain strings and still get nested keys
    (``dataset="qa.jsonl", dataset.skip_invalid=True``).
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        parts = str(key).split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if isinstance(child, str) and part in _SHORTHAND:
                child = {_SHORTHAND[part]: child}
            elif child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(".".join(parts[: depth + 1]), f"expected a mapping of fields, got {child!r}")
            node[part] = child
            node = child
        leaf = parts[-1]
        if isinstance(value, Mapping) and leaf != "columns":
            value = expand_dotted(value)
        existing = node.get(leaf)
        if isinstance(existing, dict) and isinstance(value, dict) and leaf != "columns":
            deep_update(existing, value)
        elif isinstance(existing, dict) and isinstance(value, str) and leaf in _SHORTHAND:
            existing[_SHORTHAND[leaf]] = value
        else:
            node[leaf] = value
    return out


def deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply ``overrides`` onto ``base`` in place; strings for model/dataset replace their name/path."""
    for key, value in overrides.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping) and key != "columns":
            deep_update(current, value)
        elif isinstance(current, dict) and isinstance(value, str) and key in ("model", "dataset"):
            current["name" if key == "model" else "path"] = value
        else:
            base[key] = value
    return base


_FLAGS.update({spec.path: spec.flag for spec in field_specs() if spec.flag})
