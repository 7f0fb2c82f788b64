"""The form's state: its values as a config, every problem marked at its field, the preview, the plan, Start's readiness.

Everything a button does is a method, so the form is usable and testable without a browser. Uploads are
written to ``unsloth_nb_uploads/`` under the panel's base folder (the kernel's working directory unless
``base_dir`` says otherwise) and that path becomes the dataset; the upload widget is emptied so the
notebook does not carry the file's bytes in its widget state.
"""

from __future__ import annotations

import contextvars
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.config import DatasetConfig, TrainConfig, expand_dotted
from unsloth_nb.errors import DatasetError, UnslothNbError, use_wording
from unsloth_nb.ui.panel_fields import (
    ADVANCED_FIELDS,
    COMMON_FIELDS,
    DATASET_FIELDS,
    FIELD_ALIASES,
    INVALID_BORDER,
    MODEL_SUGGESTIONS,
    PANEL,
    PREVIEW_ROWS,
    RED,
    UPLOAD_FOLDER,
    UPLOAD_TYPES,
    FormField,
    as_text,
    columns_of,
    initial_values,
    make_field,
)
from unsloth_nb.ui.panel_html import plan_html, preview_html, say_html

if TYPE_CHECKING:
    from unsloth_nb.data import DatasetPreview
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.planning.planner import Plan


class PanelForm:
    """The fields, preview and plan of a TrainingPanel, and whether Start may be pressed."""

    def __init__(
        self,
        model: str | None,
        dataset: str | Path | None,
        *,
        config: TrainConfig | Mapping[str, Any] | None,
        base_dir: str | Path | None,
        suggestions: tuple[str, ...] = MODEL_SUGGESTIONS,
        overrides: dict[str, Any],
    ) -> None:
        import ipywidgets as widgets

        self.base_dir = Path(base_dir or Path.cwd()).resolve()
        self.job: Job | None = None
        self.errors: dict[str, str] = {}
        self.last_preview: DatasetPreview | None = None
        self.last_plan: Plan | None = None
        self._dataset_problem = ""
        self._context = contextvars.copy_context()
        self.initial = initial_values(config, model, dataset, overrides)
        self.fields: dict[str, FormField] = {
            path: make_field(path, self.initial, suggestions) for path in (*COMMON_FIELDS, *ADVANCED_FIELDS)
        }
        self.placement = widgets.ToggleButtons(
            options=[("auto", "auto"), ("local", "local"), ("RunPod", "runpod")],
            value=self.initial.get("placement", "auto"),
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
        self.preview_html = widgets.HTML()
        self.plan_html = widgets.HTML()
        self.message_html = widgets.HTML()
        self.confirm_box = widgets.HBox()

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
            if value == item.spec.default or (isinstance(value, str) and value == as_text(item.spec.default)):
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
        path = FIELD_ALIASES.get(path, path)
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
            item.error.value = f'<span style="color:{RED}">{html.escape(message)}</span>' if message else ""
            item.widget.layout.border = INVALID_BORDER if message else None
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
        if path in DATASET_FIELDS:
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
            columns=columns_of(self.fields["dataset.columns"].widget.value),
            skip_invalid=bool(self.fields["dataset.skip_invalid"].widget.value),
            long_rows=str(self.fields["dataset.long_rows"].widget.value),
        )
        with use_wording(PANEL):
            preview = inspect_dataset(dataset, n=PREVIEW_ROWS, max_seq_length=self._max_seq_length(), base_dir=str(self.base_dir))
        self.last_preview = preview
        self.preview_html.value = preview_html(preview, skip_invalid=dataset.skip_invalid)
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
        self.plan_html.value = plan_html(result)
        self._say("")
        return result

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message_html.value = say_html(text, error=error)
