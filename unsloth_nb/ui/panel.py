"""TrainingPanel: ``%unsloth_train`` as a form.

Each field is bound to a TrainConfig path and the form builds its config through
``TrainConfig.from_dict``, so a form, a YAML cell and a CLI flag share one schema
and one set of messages; a ConfigError names its field and the message appears
next to that field. Start runs the same ``prepare`` / ``Job.start`` as the magic
and shows the same :class:`~unsloth_nb.ui.view.JobView`.

Everything the buttons do is a method (``preview()``, ``plan()``, ``start()``,
``stop()``), so the panel is usable and testable without a browser.

Secrets never enter a widget: widget state is saved into the notebook file. Keys
are read from the environment when a job needs them; a missing one is named,
with two ways to provide it (the environment, or :meth:`TrainingPanel.ask_secrets`,
a password prompt that stores nothing).

Uploads are written to ``unsloth_nb_uploads/`` under the panel's base folder (the
kernel's working directory unless ``base_dir`` says otherwise) and that path
becomes the dataset; the upload widget is emptied so the notebook does not carry
the file's bytes in its widget state.
"""

from __future__ import annotations

import contextvars
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.config import DatasetConfig, FieldSpec, TrainConfig, deep_update, expand_dotted, field_specs
from unsloth_nb.errors import ConfigError, DatasetError, MissingSecretError, UnslothNbError

if TYPE_CHECKING:
    from unsloth_nb.data import DatasetPreview
    from unsloth_nb.jobs.controller import Job
    from unsloth_nb.planning.planner import Plan
    from unsloth_nb.ui.view import JobView

__all__ = ["ADVANCED_FIELDS", "COMMON_FIELDS", "MODEL_SUGGESTIONS", "UPLOAD_FOLDER", "TrainingPanel"]

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
    "lora.dropout",
    "lora.use_rslora",
    "train.warmup_steps",
    "train.weight_decay",
    "train.scheduler",
    "train.seed",
    "train.train_on_responses_only",
    "train.save_steps",
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
    "judge.max_cost_usd",
)

#: Folder (under the base folder) that uploaded datasets are written to.
UPLOAD_FOLDER = "unsloth_nb_uploads"
UPLOAD_TYPES = ".jsonl,.ndjson,.json,.csv,.tsv,.parquet,.pq"
PREVIEW_ROWS = 5
_PREVIEW_CELL_CHARS = 300
_DATASET_FIELDS = frozenset({"dataset.path", "dataset.format", "dataset.columns", "dataset.skip_invalid", "train.max_seq_length"})
#: Error fields that are a section name: the form shows them at this field.
_FIELD_ALIASES = {"model": "model.name", "dataset": "dataset.path"}
_RED = "#cf222e"


@dataclass
class _Field:
    spec: FieldSpec
    widget: Any
    error: Any
    row: Any


class TrainingPanel:
    """A form for a fine-tuning job: model, dataset (path or upload) with a preview, settings, plan, Start/Stop.

    ``TrainingPanel(model=..., dataset=..., **overrides)`` fills the form;
    overrides use dotted or double-underscore paths (``train__lr=1e-4``), as
    ``unsloth_nb.train`` does. ``base_dir`` is where relative dataset paths and
    uploads live (default: the current directory).
    """

    def __init__(
        self,
        model: str | None = None,
        dataset: str | Path | None = None,
        *,
        config: TrainConfig | Mapping[str, Any] | None = None,
        base_dir: str | Path | None = None,
        suggestions: tuple[str, ...] = MODEL_SUGGESTIONS,
        **overrides: Any,
    ) -> None:
        import ipywidgets as widgets

        self.base_dir = Path(base_dir or Path.cwd()).resolve()
        self.job: Job | None = None
        self.view: JobView | None = None
        self.errors: dict[str, str] = {}
        self.last_preview: DatasetPreview | None = None
        self.last_plan: Plan | None = None
        self._dataset_problem = ""
        self._context = contextvars.copy_context()
        initial = _initial_values(config, model, dataset, overrides)

        self.fields: dict[str, _Field] = {}
        for path in (*COMMON_FIELDS, *ADVANCED_FIELDS):
            self.fields[path] = self._make_field(path, initial, suggestions)
        self.placement = widgets.ToggleButtons(
            options=[("auto", "auto"), ("local", "local"), ("RunPod", "runpod")],
            value=initial.get("placement", "auto"),
            tooltips=["decided by the plan", "this machine", "a rented RunPod GPU"],
            style={"button_width": "80px"},
        )
        self.upload = widgets.FileUpload(accept=UPLOAD_TYPES, multiple=False, description="Upload")
        self.preview_button = widgets.Button(description="Preview", icon="eye", tooltip="Read the first rows and check every row")
        self.plan_button = widgets.Button(description="Check plan", icon="calculator")
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.preview_html = widgets.HTML()
        self.plan_html = widgets.HTML()
        self.message_html = widgets.HTML()
        self.confirm_box = widgets.HBox()
        self.job_box = widgets.VBox()
        self.widget = self._layout(widgets)

        self.upload.observe(self._on_upload, names="value")
        self.preview_button.on_click(lambda _b: self.preview())
        self.plan_button.on_click(lambda _b: self.plan())
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        for path, item in self.fields.items():
            item.widget.observe(lambda _change, path=path: self._on_change(path), names="value")
        self.placement.observe(lambda _change: self._on_change("placement"), names="value")
        if initial.get("dataset", {}).get("path"):
            self.preview()
        if initial.get("model", {}).get("name") and initial.get("dataset", {}).get("path"):
            self.plan()

    # ------------------------------------------------------------------ building
    def _make_field(self, path: str, initial: dict[str, Any], suggestions: tuple[str, ...]) -> _Field:
        import ipywidgets as widgets

        spec = _SPECS[path]
        value = _lookup(initial, path)
        label = COMMON_FIELDS.get(path) or path.rsplit(".", 1)[-1].replace("_", " ").capitalize()
        wide = widgets.Layout(width="340px")
        if path == "model.name":
            widget = widgets.Combobox(value=_as_text(value), options=list(suggestions), placeholder="Hub id or local folder")
            widget.layout = widgets.Layout(width="420px")
        elif spec.base_type is bool:
            widget = widgets.Checkbox(value=bool(value), indent=False)
        elif spec.choices:
            widget = widgets.Dropdown(options=list(spec.choices), value=value if value in spec.choices else spec.choices[0])
        else:
            placeholder = "none" if spec.default in (None, [], {}) else _as_text(spec.default)
            widget = widgets.Text(value=_as_text(value), placeholder=placeholder, continuous_update=False, layout=wide)
            if path == "dataset.path":
                widget.placeholder = "data.jsonl (.jsonl, .json, .csv, .parquet)"
                widget.layout = widgets.Layout(width="420px")
        title = widgets.Label(label, layout=widgets.Layout(width="150px"))
        title.tooltip = spec.help
        widget.tooltip = spec.help
        error = widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px"))
        row = widgets.HBox([title, widget, error], layout=widgets.Layout(align_items="center"))
        return _Field(spec, widget, error, row)

    def _layout(self, widgets: Any) -> Any:
        common = [self.fields[p].row for p in COMMON_FIELDS]
        dataset_row = self.fields["dataset.path"].row
        dataset_row.children = (*dataset_row.children[:2], self.upload, self.preview_button, dataset_row.children[2])
        advanced = widgets.Accordion(
            children=[widgets.VBox([self.fields[p].row for p in ADVANCED_FIELDS])], titles=("Advanced settings",)
        )
        advanced.selected_index = None
        placement_row = widgets.HBox(
            [widgets.Label("Placement", layout=widgets.Layout(width="150px")), self.placement],
            layout=widgets.Layout(align_items="center"),
        )
        buttons = widgets.HBox([self.plan_button, self.start_button, self.stop_button])
        box = widgets.VBox(
            [
                widgets.HTML("<b>Fine-tune with LoRA</b>"),
                *common[:2],
                self.preview_html,
                *common[2:],
                advanced,
                placement_row,
                self.plan_html,
                self.message_html,
                self.confirm_box,
                buttons,
                self.job_box,
            ]
        )
        box.add_class("unsloth-nb-panel")
        self.advanced = advanced
        return box

    # ------------------------------------------------------------------ values and config
    def values(self) -> dict[str, Any]:
        """The form as config data (nested dict); empty text fields are left to their defaults."""
        flat: dict[str, Any] = {}
        for path, item in self.fields.items():
            value = item.widget.value
            if isinstance(value, str):
                value = value.strip()
                if value == "":
                    continue
            flat[path] = value
        flat["placement"] = self.placement.value
        return expand_dotted(flat)

    def config(self) -> TrainConfig | None:
        """The TrainConfig the form describes, or None with each bad value reported at its field.

        ``TrainConfig.from_dict`` stops at the first bad field; the form takes that
        field out and asks again, so every bad field is marked at once.
        """
        data = self.values()
        errors: dict[str, str] = {}
        general: list[str] = []
        config: TrainConfig | None = None
        for _ in range(len(self.fields) + 2):
            try:
                config = TrainConfig.from_dict(data)
                break
            except ConfigError as exc:
                path = self._field_of(exc.field)
                if path is None:
                    general.append(str(exc))
                    break
                errors.setdefault(path, exc.reason)
                if not _drop(data, path):
                    break
        self._show_errors(errors)
        if errors or general:
            self._say("; ".join(general) or "Fix the values marked in red.", error=True)
            return None
        return config

    def _field_of(self, error_field: str) -> str | None:
        path = re.sub(r"\[\d+\]$", "", error_field)
        path = _FIELD_ALIASES.get(path, path)
        if path in self.fields or path == "placement":
            return path
        return None

    def _show_errors(self, errors: dict[str, str]) -> None:
        self.errors = errors
        for path, item in self.fields.items():
            message = errors.get(path) or (self._dataset_problem if path == "dataset.path" else "")
            item.error.value = f'<span style="color:{_RED}">{html.escape(message)}</span>' if message else ""
        if "placement" in errors:
            self._say(errors["placement"], error=True)

    def _on_change(self, path: str) -> None:
        self.confirm_box.children = ()
        if path in _DATASET_FIELDS:
            self.preview()
        self.plan()

    # ------------------------------------------------------------------ preview
    def preview(self) -> DatasetPreview | None:
        """Read the dataset's first rows, detect its format and check every row; show the result."""
        from unsloth_nb.data import inspect_dataset

        path = str(self.fields["dataset.path"].widget.value).strip()
        if not path:
            self.preview_html.value = "<i>Give a dataset path or upload a file to see its first rows.</i>"
            self.last_preview = None
            self._dataset_problem = ""
            return None
        dataset = DatasetConfig(
            path=path,
            format=self.fields["dataset.format"].widget.value,
            columns=_columns(self.fields["dataset.columns"].widget.value),
            skip_invalid=bool(self.fields["dataset.skip_invalid"].widget.value),
        )
        preview = inspect_dataset(dataset, n=PREVIEW_ROWS, max_seq_length=self._max_seq_length(), base_dir=str(self.base_dir))
        self.last_preview = preview
        self.preview_html.value = _preview_html(preview)
        error = preview.error or (f"{len(preview.problems)} row(s) cannot be used" if preview.problems else "")
        self._dataset_problem = error.splitlines()[0] if error else ""
        self._show_errors(self.errors)
        return preview

    def _max_seq_length(self) -> int:
        try:
            return int(float(str(self.fields["train.max_seq_length"].widget.value or "2048")))
        except ValueError:
            return 2048

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change.get("new") or ()
        if not files:
            return
        item = files[0]
        saved = self.save_upload(str(item["name"]), bytes(item["content"]))
        self.upload.value = ()  # the bytes must not stay in the widget state saved with the notebook
        self._say(f"Saved the upload to {saved}.")

    def save_upload(self, name: str, content: bytes) -> Path:
        """Write an uploaded file to ``<base_dir>/unsloth_nb_uploads/<name>`` and make it the dataset."""
        safe = Path(name).name.strip() or "dataset.jsonl"
        if Path(safe).suffix.lower() not in UPLOAD_TYPES.split(","):
            raise DatasetError(f"{safe}: not a dataset file; upload one of {UPLOAD_TYPES}")
        folder = self.base_dir / UPLOAD_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe
        target.write_bytes(content)
        self.fields["dataset.path"].widget.value = f"{UPLOAD_FOLDER}/{safe}"  # relative to base_dir; triggers the preview
        return target

    # ------------------------------------------------------------------ plan
    def plan(self) -> Plan | None:
        """Check the form and show where the job would run: memory, GPU, $/h and estimated cost."""
        from unsloth_nb.planning.planner import plan as make_plan

        config = self.config()
        if config is None:
            self.plan_html.value = ""
            self.last_plan = None
            return None
        preview = self.last_preview
        summary = preview.summary if preview is not None and preview.source == config.dataset.path else None
        try:
            result = make_plan(config, summary)
        except ConfigError as exc:
            self._field_error(exc)
            return None
        except UnslothNbError as exc:
            self.plan_html.value = ""
            self._say(str(exc), error=True)
            return None
        self.last_plan = result
        self.plan_html.value = _plan_html(result)
        self._say("")
        return result

    def _field_error(self, exc: ConfigError) -> None:
        path = self._field_of(exc.field)
        if path is not None and path != "placement":
            self._show_errors({path: exc.reason})
        self._say(str(exc), error=True)

    # ------------------------------------------------------------------ start / stop
    def start(self, *, yes: bool = False) -> Job | None:
        """What Start does: check everything, confirm a rental, start the job and show its view.

        Returns the Job, or None when something needs fixing first (the form says
        what) or a RunPod rental waits for confirmation: only when its estimated
        cost (capped by runpod.max_cost_usd) is above runpod.confirm_above_usd or
        unknown (``yes=True`` never asks).
        """
        from unsloth_nb.jobs.controller import Job, prepare
        from unsloth_nb.planning.rental import rental_note, rental_question
        from unsloth_nb.ui.view import JobView

        if self.job is not None and not self.job.done:
            self._say(f"Job {self.job.id} is still running; stop it first.", error=True)
            return None
        self.confirm_box.children = ()
        config = self.config()
        if config is None:
            return None
        try:
            prepared = prepare(config, self.base_dir, prompt_for_secrets=False)
        except MissingSecretError as exc:
            self._say(
                f"{exc}\nOr run panel.ask_secrets() in a cell: a password prompt that stores nothing. Then press Start again.",
                error=True,
            )
            return None
        except ConfigError as exc:
            self._field_error(exc)
            return None
        except DatasetError as exc:
            self.preview()
            self._say(str(exc), error=True)
            return None
        except UnslothNbError as exc:
            self._say(str(exc), error=True)
            return None
        self.last_plan = prepared.plan
        self.plan_html.value = _plan_html(prepared.plan)
        note = None
        if not yes:
            question = rental_question(prepared.plan, prepared.config)
            if question is not None:
                self._ask_to_rent(question)
                return None
            note = rental_note(prepared.plan, prepared.config)
        job = Job.start(prepared, context=self._context)
        self.job = job
        self.view = JobView(job)
        self.job_box.children = (self.view.widget,)
        self.start_button.disabled = True
        self.stop_button.disabled = False
        self._say(f"Started job {job.id}." + (f"\n{note}" if note else ""))
        job.log.subscribe(self._on_job_event, replay=True)
        return job

    def stop(self) -> None:
        """What Stop does: ask the running job to stop (it saves a checkpoint and the adapter first)."""
        if self.view is not None:
            self.view.stop()
        elif self.job is not None:
            self.job.cancel()
        self.stop_button.disabled = True

    def _on_job_event(self, event: Any) -> None:
        state = event.data.get("state") if event.kind == "status" else None
        if state in ("succeeded", "failed", "cancelled"):
            self.start_button.disabled = False
            self.stop_button.disabled = True
            self._say(f"Job {event.job_id} {state}.", error=state == "failed")

    def _ask_to_rent(self, question: str) -> None:
        """Show ``question`` with Rent / Cancel; Rent runs Start again with the rental confirmed."""
        import ipywidgets as widgets

        rent = widgets.Button(description="Rent and start", button_style="warning", icon="play")
        cancel = widgets.Button(description="Cancel")
        rent.on_click(lambda _b: self.start(yes=True))
        cancel.on_click(lambda _b: self._cancel_rental())
        self.confirm_box.children = (widgets.HTML(f"<b>{html.escape(question)}</b>&nbsp;"), rent, cancel)

    def _cancel_rental(self) -> None:
        self.confirm_box.children = ()
        self._say("Not started: the rental was not confirmed.")

    def ask_secrets(self) -> list[str]:
        """Ask for the keys this job needs that the environment lacks, through a password prompt.

        Run it in a cell (a button cannot open a prompt). The values go into this
        kernel's environment only: never into a widget, the notebook or a file.
        """
        from unsloth_nb.credentials import get_secret, has_secret

        config = self.config()
        needed: list[tuple[str, str]] = []
        if config is not None and config.hub.repo_id:
            needed.append(("HF_TOKEN", f"to push the adapter to {config.hub.repo_id}"))
        plan = self.last_plan or (self.plan() if config is not None else None)
        if plan is not None and plan.placement == "runpod":
            needed.append(("RUNPOD_API_KEY", "to rent a RunPod GPU"))
        asked = []
        for variable, purpose in needed:
            if not has_secret(variable):
                get_secret(variable, purpose, prompt=True)
                asked.append(variable)
        self._say(f"Set {', '.join(asked)} for this session." if asked else "Every key this job needs is already set.")
        return asked

    # ------------------------------------------------------------------ display
    def _say(self, text: str, *, error: bool = False) -> None:
        if not text:
            self.message_html.value = ""
            return
        colour = _RED if error else "inherit"
        self.message_html.value = f'<pre style="white-space:pre-wrap;color:{colour};font-size:12px">{html.escape(text)}</pre>'

    def display(self) -> TrainingPanel:
        from IPython.display import display

        display(self)
        return self

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # Jobs started from the form print into the cell that showed it.
        self._context = contextvars.copy_context()
        data: dict[str, Any] = {
            "text/plain": repr(self),
            "text/html": "<p><b>TrainingPanel</b>: the form needs a live Jupyter front end "
            "(JupyterLab, Notebook 7 or VS Code) with widgets enabled.</p>",
        }
        bundle = self.widget._repr_mimebundle_() or {}
        data.update({key: value for key, value in bundle.items() if key != "text/plain"})
        return data

    def __repr__(self) -> str:
        model = self.fields["model.name"].widget.value or "?"
        dataset = self.fields["dataset.path"].widget.value or "?"
        job = f", job {self.job.id} {self.job.state}" if self.job is not None else ""
        return f"<TrainingPanel model={model!r} dataset={dataset!r}{job}>"


# ---------------------------------------------------------------------- helpers
_SPECS: dict[str, FieldSpec] = {spec.path: spec for spec in field_specs(TrainConfig)}


def _initial_values(
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


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _drop(data: dict[str, Any], path: str) -> bool:
    """Remove ``path`` from nested ``data``; False when it was not there (nothing left to try)."""
    *parents, leaf = path.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        del node[leaf]
        return True
    return False


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _columns(text: str) -> dict[str, str]:
    pairs = [p for p in str(text or "").split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}


def _short(text: Any) -> str:
    value = str(text)
    return value if len(value) <= _PREVIEW_CELL_CHARS else value[: _PREVIEW_CELL_CHARS - 1] + "…"


def _row_html(row: Mapping[str, Any]) -> str:
    if "messages" in row:
        turns = [
            f"<b>{html.escape(str(t.get('role')))}</b>: {html.escape(_short(t.get('content', '')))}" for t in row["messages"]
        ]
        return "<br>".join(turns)
    return html.escape(_short(row.get("text", row)))


def _preview_html(preview: DatasetPreview) -> str:
    from unsloth_nb.data import FORMAT_LABELS, format_summary

    if preview.error is not None:
        return f'<pre style="white-space:pre-wrap;color:{_RED};font-size:12px">{html.escape(preview.error)}</pre>'
    label = FORMAT_LABELS.get(preview.format or "", preview.format or "unknown")
    parts = [f"<div>Detected format: <b>{html.escape(label)}</b></div>"]
    if preview.summary is not None:
        parts.append(f"<div style='font-size:12px'>{html.escape(format_summary(preview.summary))}</div>")
    if preview.ok:
        parts.append("<div style='color:#1a7f37'>✓ every row can be trained on</div>")
    else:
        shown = preview.problems[:5]
        more = len(preview.problems) - len(shown)
        lines = [*shown, *([f"… and {more} more"] if more > 0 else [])]
        parts.append(
            f"<div style='color:{_RED}'>{len(preview.problems)} row(s) cannot be used"
            " (fix them, or tick skip invalid under Advanced settings):</div>"
            f"<pre style='white-space:pre-wrap;color:{_RED};font-size:11px'>{html.escape(chr(10).join(lines))}</pre>"
        )
    if preview.rows:
        body = "".join(
            f"<tr><td style='vertical-align:top;white-space:nowrap'><code>{html.escape(origin.rsplit('/', 1)[-1])}</code></td>"
            f"<td style='text-align:left'>{_row_html(row)}</td></tr>"
            for origin, row in zip(preview.origins, preview.rows, strict=False)
        )
        parts.append(f"<table class='unsloth-nb-preview' style='font-size:12px'>{body}</table>")
    return "<div class='unsloth-nb-preview-box' style='line-height:1.4'>" + "".join(parts) + "</div>"


def _plan_html(plan: Plan) -> str:
    from unsloth_nb.planning.plan_text import format_plan

    memory = "GPU memory" if plan.device == "cuda" else "RAM"
    facts = [
        ("Runs on", "this machine" if plan.placement == "local" else "RunPod"),
        (
            "Device",
            plan.local.describe() if plan.placement == "local" else (plan.gpu.gpu_type_id if plan.gpu else "no GPU found"),
        ),
        ("Method", plan.method),
        ("Memory", f"~{plan.memory_needed_gb:.1f} GB of {memory}"),
    ]
    if plan.placement == "runpod":
        facts.append(("Price", f"${plan.usd_per_hour:.2f}/h" if plan.usd_per_hour is not None else "unknown"))
        facts.append(("Estimated cost", f"~${plan.estimated_cost_usd:.2f}" if plan.estimated_cost_usd is not None else "unknown"))
    if plan.total_steps is not None:
        facts.append(("Steps", f"{plan.total_steps:,}"))
    if plan.estimated_seconds is not None:
        facts.append(
            ("Time", f"~{plan.estimated_seconds / 60:.0f} min (rough)" if plan.estimated_seconds >= 90 else "about a minute")
        )
    rows = "".join(
        f"<tr><td style='padding-right:12px'>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>" for k, v in facts
    )
    warnings = "".join(f"<div style='color:#9a6700'>⚠ {html.escape(w)}</div>" for w in plan.warnings)
    details = f"<details><summary>Full plan</summary><pre style='font-size:11px'>{html.escape(format_plan(plan))}</pre></details>"
    return f"<div class='unsloth-nb-plan' style='line-height:1.4'><table style='font-size:12px'>{rows}</table>{warnings}{details}</div>"
