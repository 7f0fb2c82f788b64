"""The widgets of a job view, and what one flush sends to them.

Each ipywidget opens three comms on the page (itself, its layout, its style) and every change of a
value is one message with a Jupyter envelope (~1 kB), so the view keeps the running job's widgets
few: one HTML for the status line, progress bar and outcome (a bar drawn in HTML costs nothing
more when the status line is sent anyway), Stop, the chart once a step is logged, and the folded
Log. What only a finished job needs (the summary, the judge's panel, Resume, Try it) is made when
it is first needed, so a running job opens none of it. Every widget is made with a tooltip string:
one left at None reads "null" on hover, and setting it afterwards would cost a message each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unsloth_nb.ui.try_it import TryIt
from unsloth_nb.ui.view_html import log_html, show, summary_html

if TYPE_CHECKING:
    from unsloth_nb.ui.chart import LossChart


@dataclass
class Frame:
    """What one flush shows, read from the view's facts under its lock."""

    header: str
    done: bool
    failed: bool
    stopping: bool
    summary: list[tuple[str, str]]
    has_metrics: bool
    evaluation: str
    log_text: str | None  # None while the Log is folded: nothing is sent
    can_resume: bool = False
    can_try: bool = False


class ViewWidgets:
    """The ipywidgets of one view (built on first display; the after-the-run ones when first needed)."""

    def __init__(
        self,
        chart: LossChart,
        *,
        on_stop: Callable[[], None],
        on_resume: Callable[[], None],
        on_log_open: Callable[[], None],
        ask: Callable[[str], dict[str, str]],
        note: Callable[[], str | None] = lambda: None,
    ) -> None:
        import ipywidgets as widgets

        self._chart_source = chart
        self._on_resume = on_resume
        self._ask = ask
        self._note = note
        self.header = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", width="auto"), tooltip="")
        self.stop = widgets.Button(
            description="Stop", icon="stop", button_style="danger", tooltip="Stop after saving a checkpoint"
        )
        self.stop.on_click(lambda _button: on_stop())
        self.top = widgets.HBox([self.header, self.stop], layout=widgets.Layout(align_items="center"), tooltip="")
        self.log = widgets.HTML(tooltip="")
        self.log_box = widgets.Accordion(children=[self.log], titles=("Log",), selected_index=None, tooltip="")
        # Folded, the log costs nothing on the wire; opening it sends the window once.
        self.log_box.observe(lambda change: on_log_open() if change["new"] == 0 else None, names="selected_index")
        self.chart: Any = None
        self.summary: Any = None
        self.evaluation: Any = None
        self.resume: Any = None
        self.try_it: TryIt | None = None
        self.after: list[Any] = []  # views of jobs resumed from this one
        self.box = widgets.VBox([self.top, self.log_box], _dom_classes=("unsloth-nb-job",), tooltip="")

    @property
    def log_open(self) -> bool:
        return self.log_box.selected_index == 0

    def push(self, frame: Frame) -> None:
        """Copy ``frame`` into the widgets; unchanged values send nothing, missing widgets are made now."""
        import ipywidgets as widgets

        self.header.value = frame.header
        if frame.log_text is not None:
            self.log.value = log_html(frame.log_text)
        # No chart until a step is logged; none at all for a job that ended without one.
        if frame.has_metrics and self.chart is None:
            self.chart = self._chart_source.widget
        if frame.summary:
            if self.summary is None:
                self.summary = widgets.HTML(tooltip="")
            self.summary.value = summary_html(frame.summary)
        if frame.evaluation:
            if self.evaluation is None:
                self.evaluation = widgets.HTML(tooltip="")
            self.evaluation.value = frame.evaluation
        if frame.done:
            show(self.stop, False)  # a finished job has nothing to stop
            if frame.can_resume and self.resume is None:
                self.resume = widgets.Button(
                    description="Resume",
                    icon="play",
                    button_style="primary",
                    tooltip="Continue training from the last checkpoint, as a new job",
                )
                self.resume.on_click(lambda _button: self._on_resume())
            if frame.can_try and self.try_it is None:
                self.try_it = TryIt(self._ask, self._note)
            if frame.failed and self.log_box.selected_index is None:
                self.log_box.selected_index = 0  # show what went wrong
        elif frame.stopping:
            self.stop.disabled = True
            self.stop.description = "Stopping…"
        self.arrange()

    def arrange(self) -> None:
        """Set the box's children (one message, and only when they changed)."""
        top = (self.header, self.stop) if self.resume is None else (self.header, self.stop, self.resume)
        if self.top.children != top:
            self.top.children = top
        children = tuple(
            widget
            for widget in (
                self.top,
                self.summary,
                self.chart,
                self.evaluation,
                self.try_it.box if self.try_it is not None else None,
                self.log_box,
                *self.after,
            )
            if widget is not None
        )
        if self.box.children != children:
            self.box.children = children

    def close(self) -> None:
        if self.try_it is not None:
            self.try_it.close()
        for widget in (self.header, self.stop, self.resume, self.summary, self.evaluation, self.log, self.log_box, self.top):
            if widget is not None:
                widget.close()
        self.box.close()
