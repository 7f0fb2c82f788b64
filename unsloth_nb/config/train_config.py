"""TrainConfig: every knob of a fine-tuning job, validated once.

The magic, the panel, the CLI and the Python API all build a :class:`TrainConfig`
through :meth:`TrainConfig.from_dict` (YAML, JSON and CLI flags are turned into
a dict first), so there is one schema and one set of error messages. Each field
carries its own help text and CLI flag in ``metadata``; the CLI and the magic
generate their flags from it, which keeps documentation and parsing in step.
No field holds a secret: tokens come from the environment at the point of use.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.config.export import hub_problems
from unsloth_nb.config.files import deep_update, expand_dotted, load_config_file, parse_yaml
from unsloth_nb.config.generate import GenerateConfig
from unsloth_nb.config.judge import JudgeConfig
from unsloth_nb.config.runpod import RunPodConfig
from unsloth_nb.config.schema import _build, _lookup, _section_problems, field_specs, knob, schema_root, sections_enable
from unsloth_nb.config.sections import DatasetConfig, HubConfig, LoraConfig, ModelConfig, SaveConfig, TrainArgs
from unsloth_nb.config.serverless import ServerlessConfig
from unsloth_nb.config.teacher import TeacherConfig
from unsloth_nb.errors import ConfigError, raise_all, set_field
from unsloth_nb.placements import PLACEMENT_CHOICES


@schema_root
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
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    serverless: ServerlessConfig = field(default_factory=ServerlessConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    placement: str = knob(
        "auto",
        "Where to train: auto (decided by the plan), local (this machine), runpod (a GPU pod), serverless (a RunPod "
        "serverless endpoint), or another backend named in unsloth_nb.placements.",
        flag="--placement",
        choices=PLACEMENT_CHOICES,
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
        config = _build(cls, sections_enable(cls, dict(data)), "", errors, explicit)
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
        if not self.dataset.path.strip() and not self.dataset.mix:
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
        for _, section in self._sections():
            if section is not self and hasattr(section, "section_problems"):
                errors += section.section_problems()
        errors += hub_problems(self.hub, self.save)
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
