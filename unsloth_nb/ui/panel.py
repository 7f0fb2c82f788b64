"""TrainingPanel: ``%unsloth_train`` as a form.

The form itself (fields, values, problems at their fields, preview, plan) is :class:`~unsloth_nb.ui.panel_form.PanelForm`;
this module is the start flow on top of it. Start runs the same start flow (``jobrun.controller``) as the magic,
asks first where money would be spent (a rental above ``runpod.confirm_above_usd``, a teacher or a judge whose
estimate is above ``teacher.confirm_above_usd`` / ``judge.confirm_above_usd``) and shows the same :class:`~unsloth_nb.ui.view.JobView`.

Secrets never enter a widget: widget state is saved into the notebook file. Keys
are read from the environment when a job needs them; a missing one is named,
with two ways to provide it (the environment, or :meth:`TrainingPanel.ask_secrets`,
a password prompt that stores nothing).
"""

from __future__ import annotations

import contextvars
import html
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.config import TrainConfig
from unsloth_nb.errors import DatasetError, MissingSecretError, UnslothNbError, use_wording
from unsloth_nb.jobrun.lifecycle import TERMINAL_STATES
from unsloth_nb.ui.panel_fields import (
    ADVANCED_FIELDS,
    COMMON_FIELDS,
    MODEL_SUGGESTIONS,
    PANEL,
    UPLOAD_FOLDER,
    PanelWording,
    field_label,
)
from unsloth_nb.ui.panel_form import PanelForm
from unsloth_nb.ui.panel_html import plan_html as _plan_html
from unsloth_nb.ui.tooltips import no_null_tooltips

if TYPE_CHECKING:
    from unsloth_nb.jobrun.job import Job
    from unsloth_nb.jobrun.preflight import Prepared
    from unsloth_nb.ui.view import JobView

__all__ = [
    "ADVANCED_FIELDS",
    "COMMON_FIELDS",
    "MODEL_SUGGESTIONS",
    "PANEL",
    "UPLOAD_FOLDER",
    "PanelWording",
    "TrainingPanel",
    "field_label",
]


class TrainingPanel(PanelForm):
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

        super().__init__(model, dataset, config=config, base_dir=base_dir, suggestions=suggestions, overrides=overrides)
        self.view: JobView | None = None
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", button_style="danger", disabled=True, tooltip="Stop after saving a checkpoint"
        )
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
        initial = self.initial
        if initial.get("dataset", {}).get("path"):
            self.preview()
        if initial.get("model", {}).get("name") and initial.get("dataset", {}).get("path"):
            self.plan()
        self._refresh_start()
        no_null_tooltips(self.widget)

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

    # ------------------------------------------------------------------ start / stop
    def start(self, *, yes: bool = False) -> Job | None:
        """What Start does: check everything, confirm what costs money, start the job and show its view.

        Returns the Job, or None when something needs fixing first (the form says
        what) or spending waits for confirmation: a RunPod rental whose estimated
        cost (capped by runpod.max_cost_usd) is above runpod.confirm_above_usd or
        unknown, and a judge whose estimated cost (an upper bound, capped by
        judge.max_cost_usd) is above judge.confirm_above_usd or unknown. Both are
        asked in one question, before anything starts; ``yes=True`` never asks, and
        a confirmed judge is not asked about again after training.
        """
        from unsloth_nb.evaluate.judging import planned_questions, start_question
        from unsloth_nb.jobrun.controller import confirm_and_start
        from unsloth_nb.jobrun.preflight import prepare
        from unsloth_nb.planning.rental import rental_question
        from unsloth_nb.teacher.estimate import start_question as teacher_question
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
        judging = None if yes else start_question(config.judge, planned_questions(config.judge, prepared.heldout))
        teaching = None if yes else teacher_question(config.teacher, prepared.dataset.train, prepared.dataset.origins)
        if judging is not None or teaching is not None:
            renting = rental_question(prepared.plan, prepared.config)
            self._ask_first([q for q in (teaching, renting, judging) if q], spend="Rent and start" if renting else "Start")
            return None
        prepared.judge_yes = yes  # what was confirmed here is not asked again after training

        def ask(_prepared: Prepared, question: str) -> bool:
            self._ask_first([question], spend="Rent and start")  # it runs Start again with yes=True
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

    def _ask_first(self, questions: list[str], *, spend: str) -> None:
        """Show what would cost money, with ``spend`` / Cancel; ``spend`` runs Start again with it confirmed."""
        import ipywidgets as widgets

        go = widgets.Button(description=spend, button_style="warning", icon="play", tooltip="Spend it and start the job")
        cancel = widgets.Button(description="Cancel", tooltip="Nothing starts and nothing is spent")
        go.on_click(lambda _b: self.start(yes=True))
        cancel.on_click(lambda _b: self._cancel_spending())
        text = "<br>".join(f"<b>{html.escape(question)}</b>" for question in questions)
        self.confirm_box.children = (widgets.HTML(text + "&nbsp;"), go, cancel)
        no_null_tooltips(self.confirm_box)

    def _cancel_spending(self) -> None:
        self.confirm_box.children = ()
        self._say("Not started: the spending was not confirmed.")

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
