"""TrainingPanel: ``%unsloth_train`` as a form.

Each field is bound to a TrainConfig path and the form builds its config through
``TrainConfig.from_dict``, so a form, a YAML cell and a CLI flag share one schema
and one set of messages; a ConfigError names its field and the message appears
next to that field. Start runs the same start flow (``jobs.controller``) as the magic
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
from unsloth_nb.errors import DatasetError, MissingSecretError, UnslothNbError, Wording, use_wording
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES
from unsloth_nb.ui.tooltips import no_null_tooltips

if TYPE_CHECKING:
    from unsloth_nb.data import DatasetPreview
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.jobrun.preflight import Prepared
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
_DATASET_FIELDS = frozenset(
    {"dataset.path", "dataset.format", "dataset.columns", "dataset.skip_invalid", "dataset.long_rows", "train.max_seq_length"}
)
#: Error fields that are a section name: the form shows them at this field.
_FIELD_ALIASES = {"model": "model.name", "dataset": "dataset.path"}
_RED = "#cf222e"
_INVALID_BORDER = f"2px solid {_RED}"


def field_label(path: str) -> str:
    """The label a field has in the form."""
    return COMMON_FIELDS.get(path) or path.rsplit(".", 1)[-1].replace("_", " ").capitalize()


class PanelWording(Wording):
    """The form names its own fields and checkboxes, never a command-line flag."""

    help = "hover a field's label for its help"

    def heading(self, path: str) -> str:
        return field_label(path) if path in _SPECS else path

    def name(self, path: str) -> str:
        if path not in _SPECS:
            return path
        where = " under Advanced settings" if path in ADVANCED_FIELDS else ""
        return f"“{field_label(path)}”{where}"

    def set(self, path: str, value: str | None) -> str:
        if path == "placement":
            return f"choose {value} under Placement" if value else "choose a Placement"
        if path not in _SPECS:
            return f"set {path}" + (f" to {value}" if value is not None else "")
        if _SPECS[path].base_type is bool:
            verb = "untick" if value == "false" else "tick"
            return f"{verb} {self.name(path)}"
        if value is None:
            return f"fill in {self.name(path)}"
        return f"set {self.name(path)} to {value}"


PANEL = PanelWording()


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
        self.upload = widgets.FileUpload(
            accept=UPLOAD_TYPES, multiple=False, description="Upload", tooltip=f"Upload a dataset file ({UPLOAD_TYPES})"
        )
        self.preview_button = widgets.Button(description="Preview", icon="eye", tooltip="Read the first rows and check every row")
        self.plan_button = widgets.Button(
            description="Check plan", icon="calculator", tooltip="Where the job would run: memory, GPU, time and cost"
        )
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success", tooltip="Start the job")
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", button_style="danger", disabled=True, tooltip="Stop after saving a checkpoint"
        )
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
        self._refresh_start()
        no_null_tooltips(self.widget)

    # ------------------------------------------------------------------ building
    def _make_field(self, path: str, initial: dict[str, Any], suggestions: tuple[str, ...]) -> _Field:
        import ipywidgets as widgets

        spec = _SPECS[path]
        value = _lookup(initial, path)
        label = field_label(path)
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
            if value == item.spec.default or (isinstance(value, str) and value == _as_text(item.spec.default)):
                continue  # the default: not the user's choice, so it may be adjusted to fit what they chose
            flat[path] = value
        if self.placement.value != "auto":
            flat["placement"] = self.placement.value
        return expand_dotted(flat)

    def config(self) -> TrainConfig | None:
        """The TrainConfig the form describes, or None with every bad value marked at its field at once."""
        with use_wording(PANEL):
            config, errors = TrainConfig.checked(self.values())
        self._show_problems(errors, live=True)
        return None if errors else config

    def _field_of(self, error_field: str | None) -> str | None:
        if not error_field:
            return None
        path = re.sub(r"\[\d+\]$", "", error_field)
        path = _FIELD_ALIASES.get(path, path)
        if path in self.fields or path == "placement":
            return path
        return None

    def _show_problems(self, problems: list[Any], *, extra: str = "", live: bool = False) -> None:
        """Mark each problem at its field (outlined, with the reason beside it) and list them all in the message line."""
        errors: dict[str, str] = {}
        lines: list[str] = []
        with use_wording(PANEL):
            for problem in problems:
                path = self._field_of(problem.field)
                reason = getattr(problem, "reason", None)
                if path is not None and path != "placement" and reason is not None:
                    errors.setdefault(path, reason)
                if path == "dataset.path" and isinstance(problem, DatasetError):
                    self._dataset_problem = problem.summary.splitlines()[0]
                lines.append(problem.render(PANEL))
        self._show_errors(errors)
        if not lines:
            self._say("")
            return
        bullets = "\n".join("- " + line.replace("\n", "\n  ") for line in lines)
        if live:  # checked as the form is filled in
            text = f"Fix the values outlined in red:\n{bullets}"
        elif len(lines) == 1:
            text = lines[0]
        else:
            text = f"{len(lines)} problems; nothing was started:\n{bullets}"
        self._say(text + (f"\n{extra}" if extra else ""), error=True)

    def _show_errors(self, errors: dict[str, str]) -> None:
        self.errors = errors
        for path, item in self.fields.items():
            message = errors.get(path) or (self._dataset_problem if path == "dataset.path" else "")
            item.error.value = f'<span style="color:{_RED}">{html.escape(message)}</span>' if message else ""
            item.widget.layout.border = _INVALID_BORDER if message else None
        self._refresh_start()

    def _data_blocks(self) -> str:
        """Why the dataset stops a start ("" when it does not)."""
        preview = self.last_preview
        if preview is None:
            return ""
        if preview.error:
            return "the dataset cannot be used"
        if preview.problems and not self.fields["dataset.skip_invalid"].widget.value:
            return f"{len(preview.problems)} row(s) of the dataset cannot be used"
        return ""

    def _refresh_start(self) -> None:
        """Start is enabled only for a form that can start: no invalid field, usable data, no job running."""
        if self.job is not None and not self.job.done:
            reason = f"job {self.job.id} is running"
        elif self.errors:
            reason = "fix the fields outlined in red first"
        elif not str(self.fields["model.name"].widget.value).strip() or not str(self.fields["dataset.path"].widget.value).strip():
            reason = "fill in Model and Dataset first"
        else:
            reason = self._data_blocks()
            reason = f"{reason}: fix it, or tick “Skip invalid” under Advanced settings" if "row(s)" in reason else reason
        self.start_button.disabled = bool(reason)
        self.start_button.tooltip = f"Not yet: {reason}" if reason else "Check everything and start the job"

    def _on_change(self, path: str) -> None:
        self.confirm_box.children = ()
        if path in _DATASET_FIELDS:
            self._clear_plan()  # it was made for the old data
            self.preview()
        self.plan()

    def _clear_plan(self) -> None:
        self.plan_html.value = ""
        self.last_plan = None

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
            long_rows=str(self.fields["dataset.long_rows"].widget.value),
        )
        with use_wording(PANEL):
            preview = inspect_dataset(dataset, n=PREVIEW_ROWS, max_seq_length=self._max_seq_length(), base_dir=str(self.base_dir))
        self.last_preview = preview
        self.preview_html.value = _preview_html(preview, skip_invalid=dataset.skip_invalid)
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
        relative = f"{UPLOAD_FOLDER}/{safe}"  # relative to base_dir
        if self.fields["dataset.path"].widget.value == relative:
            self._on_change("dataset.path")  # same name, new content: the field does not change, the data did
        else:
            self.fields["dataset.path"].widget.value = relative  # triggers the preview
        return target

    # ------------------------------------------------------------------ plan
    def plan(self) -> Plan | None:
        """Check the form and show where the job would run: memory, GPU, $/h and estimated cost."""
        from unsloth_nb.planning.planner import plan as make_plan

        config = self.config()
        if config is None or self._data_blocks():
            self._clear_plan()  # a plan of data that cannot be used would be stale the moment it is fixed
            return None
        preview = self.last_preview
        summary = preview.summary if preview is not None and preview.source == config.dataset.path else None
        try:
            with use_wording(PANEL):
                result = make_plan(config, summary)
        except UnslothNbError as exc:
            self._clear_plan()
            self._show_problems(exc.errors())
            return None
        self.last_plan = result
        self.plan_html.value = _plan_html(result)
        self._say("")
        return result

    # ------------------------------------------------------------------ start / stop
    def start(self, *, yes: bool = False) -> Job | None:
        """What Start does: check everything, confirm a rental, start the job and show its view.

        Returns the Job, or None when something needs fixing first (the form says
        what) or a RunPod rental waits for confirmation: only when its estimated
        cost (capped by runpod.max_cost_usd) is above runpod.confirm_above_usd or
        unknown (``yes=True`` never asks).
        """
        from unsloth_nb.jobrun.controller import confirm_and_start
        from unsloth_nb.jobrun.preflight import prepare
        from unsloth_nb.ui.view import JobView

        if self.job is not None and not self.job.done:
            self._say(f"Job {self.job.id} is still running; stop it first.", error=True)
            return None
        self.confirm_box.children = ()
        with use_wording(PANEL):
            config, mistakes = TrainConfig.checked(self.values())
        try:
            with use_wording(PANEL):  # the data, the model and the keys are checked even when a field is wrong
                prepared = prepare(config, self.base_dir, prompt_for_secrets=False, earlier=mistakes)
        except UnslothNbError as exc:
            problems = exc.errors()
            if any(isinstance(p, DatasetError) for p in problems):
                self.preview()
            keys = any(isinstance(p, MissingSecretError) for p in problems)
            extra = "Or run panel.ask_secrets() in a cell: a password prompt that stores nothing. Then press Start again."
            self._show_problems(problems, extra=extra if keys else "")
            return None
        self.last_plan = prepared.plan
        self.plan_html.value = _plan_html(prepared.plan)
        notes: list[str] = []

        def ask(_prepared: Prepared, question: str) -> bool:
            self._ask_to_rent(question)  # Rent runs Start again with yes=True
            return False

        job = confirm_and_start(prepared, confirm=None if yes else ask, say=notes.append, context=self._context)
        if job is None:
            return None
        note = notes[0] if notes else None
        self.job = job
        self.view = JobView(job)
        self.job_box.children = (self.view.widget,)
        no_null_tooltips(self.view.widget)
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
        if state in TERMINAL_STATES:
            self.stop_button.disabled = True
            self._refresh_start()
            self._say(f"Job {event.job_id} {state}.", error=state == "failed")

    def _ask_to_rent(self, question: str) -> None:
        """Show ``question`` with Rent / Cancel; Rent runs Start again with the rental confirmed."""
        import ipywidgets as widgets

        rent = widgets.Button(
            description="Rent and start", button_style="warning", icon="play", tooltip="Rent the GPU and start the job"
        )
        cancel = widgets.Button(description="Cancel", tooltip="Do not rent; nothing starts")
        rent.on_click(lambda _b: self.start(yes=True))
        cancel.on_click(lambda _b: self._cancel_rental())
        self.confirm_box.children = (widgets.HTML(f"<b>{html.escape(question)}</b>&nbsp;"), rent, cancel)
        no_null_tooltips(self.confirm_box)

    def _cancel_rental(self) -> None:
        self.confirm_box.children = ()
        self._say("Not started: the rental was not confirmed.")

    def ask_secrets(self) -> list[str]:
        """Ask for the keys this job needs that the environment lacks, through a password prompt.

        Run it in a cell (a button cannot open a prompt). The values go into this
        kernel's environment only: never into a widget, the notebook or a file.
        """
        from unsloth_nb.jobrun.preflight import ask_for_secrets, missing_secrets

        config = self.config()
        if config is None:
            return []
        plan = self.last_plan or self.plan()
        missing = missing_secrets(config, plan.placement if plan is not None else config.placement)
        with use_wording(PANEL):
            try:
                ask_for_secrets(missing, can_prompt=True)
            except MissingSecretError as exc:
                self._show_problems([exc])
                raise
        asked = [name for name, _ in missing]
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


def _preview_html(preview: DatasetPreview, *, skip_invalid: bool = True) -> str:
    from unsloth_nb.data import FORMAT_LABELS, format_summary

    if preview.error is not None:
        return f'<pre style="white-space:pre-wrap;color:{_RED};font-size:12px">{html.escape(preview.error)}</pre>'
    label = FORMAT_LABELS.get(preview.format or "", preview.format or "unknown")
    parts = [f"<div>Detected format: <b>{html.escape(label)}</b></div>"]
    if preview.summary is not None:
        summary = format_summary(preview.summary)
        if not skip_invalid:  # nothing is skipped unless the box is ticked: the bad rows stop the job instead
            summary = summary.replace(f", {preview.summary.skipped:,} skipped", "")
        parts.append(f"<div style='font-size:12px'>{html.escape(summary)}</div>")
    sampled = preview.summary is not None and any("a sample of its first rows" in line for line in preview.summary.sources)
    if preview.ok:
        where = " of the sample (the rest is checked where training runs)" if sampled else ""
        parts.append(f"<div style='color:#1a7f37'>✓ every row{where} can be trained on</div>")
    else:
        shown = preview.problems[:5]
        more = len(preview.problems) - len(shown)
        lines = [*shown, *([f"… and {more} more"] if more > 0 else [])]
        parts.append(
            f"<div style='color:{_RED}'>{len(preview.problems)} row(s) cannot be used"
            + (
                " and will be skipped:</div>"
                if skip_invalid
                else " (fix them, or tick “Skip invalid” under Advanced settings):</div>"
            )
            + f"<pre style='white-space:pre-wrap;color:{_RED};font-size:11px'>{html.escape(chr(10).join(lines))}</pre>"
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
    from unsloth_nb.backends.registry import get_backend
    from unsloth_nb.planning.plan_text import format_plan

    backend = get_backend(plan.placement)
    memory = "GPU memory" if plan.device == "cuda" else "RAM"
    facts = [
        ("Runs on", backend.label),
        ("Device", plan.local.describe() if backend.in_process else (backend.plan_target(plan) or "no GPU found")),
        ("Method", plan.method),
        ("Memory", f"~{plan.memory_needed_gb:.1f} GB of {memory}"),
    ]
    if backend.rents:
        facts.append(("Price", f"${plan.usd_per_hour:.2f}/h" if plan.usd_per_hour is not None else "unknown"))
        facts.append(("Estimated cost", f"~${plan.estimated_cost_usd:.2f}" if plan.estimated_cost_usd is not None else "unknown"))
    if plan.total_steps is not None:
        facts.append(("Steps", f"{plan.total_steps:,}"))
    if plan.estimated_seconds is not None:
        facts.append(("Time", plan.time_text()))
    rows = "".join(
        f"<tr><td style='padding-right:12px'>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>" for k, v in facts
    )
    warnings = "".join(f"<div style='color:#9a6700'>⚠ {html.escape(w)}</div>" for w in plan.warnings)
    details = f"<details><summary>Full plan</summary><pre style='font-size:11px'>{html.escape(format_plan(plan))}</pre></details>"
    return f"<div class='unsloth-nb-plan' style='line-height:1.4'><table style='font-size:12px'>{rows}</table>{warnings}{details}</div>"
