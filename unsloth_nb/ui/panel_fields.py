"""The form's fields: which TrainConfig paths it shows, their labels and widgets, and its own wording.

Each field is bound to a TrainConfig path, so a form, a YAML cell and a CLI flag share one schema and one
set of messages; :class:`PanelWording` makes those messages name the form's fields and checkboxes, never
a command-line flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unsloth_nb.config import FieldSpec, TrainConfig, deep_update, expand_dotted, field_specs
from unsloth_nb.errors import Wording

#: Offered in the model box; any Hub id or local folder can be typed instead.
MODEL_SUGGESTIONS = (
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "unsloth/Llama-3.2-1B-Instruct",
    "unsloth/Llama-3.2-3B-Instruct",
    "unsloth/Qwen3-4B",
    "unsloth/Qwen3-8B",
    "unsloth/Qwen3-14B",
    "unsloth/gemma-3-4b-it",
    "unsloth/Meta-Llama-3.1-8B-Instruct",
    "unsloth/Llama-3.3-70B-Instruct",
)

#: Fields shown at the top, with their labels.
COMMON_FIELDS: dict[str, str] = {
    "model.name": "Model",
    "dataset.path": "Dataset",
    "train.epochs": "Epochs",
    "train.max_steps": "Max steps",
    "train.lr": "Learning rate",
    "train.batch_size": "Batch size",
    "train.grad_accum": "Grad. accumulation",
    "train.max_seq_length": "Max seq. length",
    "lora.r": "LoRA rank",
    "lora.alpha": "LoRA alpha",
}

#: Fields folded under "Advanced settings".
ADVANCED_FIELDS = (
    "model.load_in_4bit",
    "model.chat_template",
    "dataset.format",
    "dataset.columns",
    "dataset.eval_split",
    "dataset.max_rows",
    "dataset.skip_invalid",
    "dataset.long_rows",
    "lora.dropout",
    "lora.target_modules",
    "lora.use_rslora",
    "train.warmup_steps",
    "train.weight_decay",
    "train.scheduler",
    "train.seed",
    "train.train_on_responses_only",
    "train.save_steps",
    "generate.max_new_tokens",
    "generate.temperature",
    "generate.min_p",
    "save.output_dir",
    "save.merged_16bit",
    "hub.repo_id",
    "hub.private",
    "runpod.gpus",
    "runpod.cloud_type",
    "runpod.allow_community",
    "runpod.max_cost_usd",
    "runpod.confirm_above_usd",
    "runpod.max_runtime",
    "judge.enabled",
    "judge.provider",
    "judge.model",
    "judge.base_url",
    "judge.eval_path",
    "judge.holdout",
    "judge.max_new_tokens",
    "judge.max_cost_usd",
    "judge.confirm_above_usd",
    "teacher.enabled",
    "teacher.provider",
    "teacher.model",
    "teacher.base_url",
    "teacher.operations",
    "teacher.paraphrases",
    "teacher.max_cost_usd",
    "teacher.confirm_above_usd",
)

#: Advanced fields whose last name alone would be ambiguous (the judge has a max_new_tokens too).
ADVANCED_LABELS: dict[str, str] = {
    "generate.max_new_tokens": "Answer length (tokens)",
    "generate.temperature": "Answer temperature",
    "generate.min_p": "Answer min_p",
}

#: Folder (under the base folder) that uploaded datasets are written to.
UPLOAD_FOLDER = "unsloth_nb_uploads"
UPLOAD_TYPES = ".jsonl,.ndjson,.json,.csv,.tsv,.parquet,.pq"
PREVIEW_ROWS = 5
_PREVIEW_CELL_CHARS = 300
DATASET_FIELDS = frozenset(
    {"dataset.path", "dataset.format", "dataset.columns", "dataset.skip_invalid", "dataset.long_rows", "train.max_seq_length"}
)
#: Error fields that are a section name: the form shows them at this field.
FIELD_ALIASES = {"model": "model.name", "dataset": "dataset.path"}
RED = "#cf222e"
INVALID_BORDER = f"2px solid {RED}"


def field_label(path: str) -> str:
    """The label a field has in the form."""
    return COMMON_FIELDS.get(path) or ADVANCED_LABELS.get(path) or path.rsplit(".", 1)[-1].replace("_", " ").capitalize()


class PanelWording(Wording):
    """The form names its own fields and checkboxes, never a command-line flag."""

    help = "hover a field's label for its help"

    def heading(self, path: str) -> str:
        return field_label(path) if path in SPECS else path

    def name(self, path: str) -> str:
        if path not in SPECS:
            return path
        where = " under Advanced settings" if path in ADVANCED_FIELDS else ""
        return f"“{field_label(path)}”{where}"

    def set(self, path: str, value: str | None) -> str:
        if path == "placement":
            return f"choose {value} under Placement" if value else "choose a Placement"
        if path not in SPECS:
            return f"set {path}" + (f" to {value}" if value is not None else "")
        if SPECS[path].base_type is bool:
            verb = "untick" if value == "false" else "tick"
            return f"{verb} {self.name(path)}"
        if value is None:
            return f"fill in {self.name(path)}"
        return f"set {self.name(path)} to {value}"


PANEL = PanelWording()

SPECS: dict[str, FieldSpec] = {spec.path: spec for spec in field_specs(TrainConfig)}


@dataclass
class FormField:
    """One field of the form: its schema, its input widget, its error line and the row holding them."""

    spec: FieldSpec
    widget: Any
    error: Any
    row: Any


def make_field(path: str, initial: dict[str, Any], suggestions: tuple[str, ...]) -> FormField:
    """The label, input and error line of one field, filled from ``initial``."""
    import ipywidgets as widgets

    spec = SPECS[path]
    value = lookup(initial, path)
    label = field_label(path)
    wide = widgets.Layout(width="340px")
    if path == "model.name":
        widget = widgets.Combobox(value=as_text(value), options=list(suggestions), placeholder="Hub id or local folder")
        widget.layout = widgets.Layout(width="420px")
    elif spec.base_type is bool:
        widget = widgets.Checkbox(value=bool(value), indent=False)
    elif spec.choices:
        widget = widgets.Dropdown(options=list(spec.choices), value=value if value in spec.choices else spec.choices[0])
    else:
        placeholder = "none" if spec.default in (None, [], {}) else as_text(spec.default)
        # None that is not the default (generate.temperature: none = the model's own) must show, or an empty box
        # would bring the default back.
        text = "none" if value is None and spec.optional and spec.default is not None else as_text(value)
        widget = widgets.Text(value=text, placeholder=placeholder, continuous_update=False, layout=wide)
        if path == "dataset.path":
            widget.placeholder = "data.jsonl (.jsonl, .json, .csv, .parquet)"
            widget.layout = widgets.Layout(width="420px")
    title = widgets.Label(label, layout=widgets.Layout(width="150px"))
    title.tooltip = spec.help
    widget.tooltip = spec.help
    error = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
    row = widgets.HBox([title, widget, error], layout=widgets.Layout(align_items="center"))
    return FormField(spec, widget, error, row)


def initial_values(
    config: TrainConfig | Mapping[str, Any] | None, model: str | None, dataset: str | Path | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    data = TrainConfig().to_dict()
    if isinstance(config, TrainConfig):
        deep_update(data, config.to_dict())
    elif config is not None:
        deep_update(data, expand_dotted(dict(config)))
    if model is not None:
        data["model"]["name"] = str(model)
    if dataset is not None:
        data["dataset"]["path"] = str(dataset)
    deep_update(data, expand_dotted({key.replace("__", "."): value for key, value in overrides.items()}))
    return data


def lookup(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def columns_of(text: str) -> dict[str, str]:
    pairs = [p for p in str(text or "").split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}
