"""Several jobs' loss curves on one chart, the way W&B users compare runs.

``unsloth_nb.compare(["20261206-0101-ab12", job, …])`` (or *Compare selected* in
``%unsloth_jobs``) reads each job's events and draws its raw loss faintly and its
smoothed loss boldly in one colour per job, with the same page-side smoothing and
log-y controls as a job's own chart. It reuses the live chart's front end
(``static/chart.js``): each job is one table of the snapshot, so the page needs no
code of its own, and nothing streams (a compare view is a picture of finished or
running jobs at the moment it was drawn; draw it again for newer steps).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobrun.events import Event, read_events_file
from unsloth_nb.ui.loss_figure import _build_figure
from unsloth_nb.ui.loss_series import MAX_POINTS, SMOOTHING, LossHistory, default_smoothing, smoothed
from unsloth_nb.ui.loss_static import svg_series_html

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from unsloth_nb.jobrun.job import Job

__all__ = ["CompareView", "compare"]

#: One colour per job (Plotly's qualitative "D3" set, minus the red used for eval points).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
HEIGHT = 380


class CompareView:
    """Loss curves of several jobs overlaid; display it, or take :meth:`figure` / :meth:`static_html`."""

    def __init__(self, jobs: Iterable[Job | str], *, title: str | None = None, max_points: int = MAX_POINTS) -> None:
        from unsloth_nb.jobrun.controller import load_job

        self.jobs = [job if not isinstance(job, str) else load_job(job, reattach=False) for job in jobs]
        if not self.jobs:
            raise ValueError("compare() needs at least one job")
        self.labels = [_label(job) for job in self.jobs]
        self.histories: list[LossHistory] = []
        for job in self.jobs:
            history = LossHistory(max_points, SMOOTHING)
            for event in _events(job):
                history.ingest(event)
            self.histories.append(history)
        longest = max((h.latest.get("step") or 0) for h in self.histories)  # steps run, not planned
        self.smoothing = default_smoothing(longest)
        self.title = title or f"Loss of {len(self.jobs)} job{'s' if len(self.jobs) != 1 else ''}"
        self._widget: Any = None
        self._lock = threading.Lock()

    # -------------------------------------------------------------- data
    def tables(self) -> dict[str, dict[str, list[Any]]]:
        """``{job_id: {"x": [...], "loss": [...]}}`` plus ``{job_id + ":eval": …}`` where a job evaluated."""
        out: dict[str, dict[str, list[Any]]] = {}
        for job, history in zip(self.jobs, self.histories, strict=True):
            payloads = history.payloads(with_open=True)
            out[job.id] = {"x": payloads["train"]["x"], "loss": payloads["train"]["loss"]}
            if history.tables["eval"].raw_rows:
                out[job.id + ":eval"] = payloads["eval"]
        return out

    def widths(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job, history in zip(self.jobs, self.histories, strict=True):
            out[job.id] = history.tables["train"].width
            out[job.id + ":eval"] = history.tables["eval"].width
        return out

    def spec(self) -> dict[str, Any]:
        traces: list[dict[str, Any]] = []
        for i, (job, label) in enumerate(zip(self.jobs, self.labels, strict=True)):
            colour = PALETTE[i % len(PALETTE)]
            common = {"type": "scatter", "connectgaps": True, "legendgroup": job.id, "hovertemplate": "%{y:.4g}"}
            traces.append(
                {
                    **common,
                    "table": job.id,
                    "column": "loss",
                    "name": f"{label} (raw)",
                    "mode": "lines",
                    "showlegend": False,
                    "opacity": 0.3,
                    "line": {"color": colour, "width": 1},
                    "hoverinfo": "skip",
                    "hovertemplate": None,
                }
            )
            traces.append(
                {
                    **common,
                    "table": job.id,
                    "column": "loss",
                    "smooth": True,
                    "name": label,
                    "mode": "lines",
                    "line": {"color": colour, "width": 2},
                }
            )
            if self.histories[i].tables["eval"].raw_rows:
                traces.append(
                    {
                        **common,
                        "table": job.id + ":eval",
                        "column": "loss",
                        "name": f"{label} eval",
                        "mode": "markers",
                        "marker": {"color": colour, "size": 7, "symbol": "diamond"},
                    }
                )
        layout = {
            "height": HEIGHT,
            "title": {"text": self.title, "x": 0, "xanchor": "left", "font": {"size": 14}},
            "margin": {"l": 64, "r": 16, "t": 64, "b": 40},
            "xaxis": {
                "title": {"text": "step"},
                "tickformat": "d",
                "zeroline": False,
                "unifiedhovertitle": {"text": "step %{x:,}"},
            },
            "yaxis": {"title": {"text": "loss"}, "zeroline": False, "automargin": True},
            "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11}},
            "hovermode": "x unified",
            "uirevision": "unsloth-nb-compare",
            "meta": {"smoothing": self.smoothing},
        }
        return {"traces": traces, "layout": layout, "config": {"displaylogo": False, "responsive": True}}

    def snapshot(self) -> dict[str, Any]:
        """The one message the page draws from (the live chart's snapshot format)."""
        steps = max((h.tables["train"].raw_rows for h in self.histories), default=0)
        return {
            "type": "snapshot",
            "seq": 0,
            "steps": steps,
            "width": self.widths(),
            "smoothing": self.smoothing,
            "traces": self.tables(),
        }

    # -------------------------------------------------------------- outputs
    def figure(self) -> go.Figure:
        return _build_figure(self.spec(), self.tables(), smoothing=self.smoothing, widths=self.widths(), log_y_menu=True)

    def static_html(self) -> str:
        tables, widths = self.tables(), self.widths()
        series = []
        for i, (job, label) in enumerate(zip(self.jobs, self.labels, strict=True)):
            table = tables[job.id]
            series.append(
                (label, table["x"], smoothed(table["loss"], self.smoothing, widths[job.id]), PALETTE[i % len(PALETTE)], "line")
            )
        return svg_series_html(series, f"smoothing {self.smoothing:g}", self.title)

    def text(self) -> str:
        lines = [self.title]
        for label, history in zip(self.labels, self.histories, strict=True):
            latest = history.latest
            loss = f"final loss {latest['loss']:.4f}" if "loss" in latest else "no steps logged"
            best = f", min {history.min_loss[0]:.4f}" if history.min_loss else ""
            lines.append(f"  {label}: {int(latest.get('step', 0)):,} steps, {loss}{best}")
        return "\n".join(lines)

    @property
    def widget(self) -> Any:
        from unsloth_nb.ui.chart import _claim_first_plotly_push, _plotly_js, _widget_class

        with self._lock:
            if self._widget is None:
                widget = _widget_class()(spec=self.spec())
                widget.on_msg(self._on_front_end_msg)
                self._widget = widget
                if _claim_first_plotly_push():
                    widget.send({"type": "plotly"}, buffers=[_plotly_js()])
                widget.send(self.snapshot())
            return self._widget

    def _on_front_end_msg(self, widget: Any, content: Any, _buffers: Any) -> None:
        from unsloth_nb.ui.chart import _plotly_js

        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resync":
            widget.send(self.snapshot())
        elif kind == "plotly":
            widget.send({"type": "plotly"}, buffers=[_plotly_js()])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from unsloth_nb.ui.chart import widgets_can_render

        data: dict[str, Any] = {
            "text/plain": self.text(),
            "text/html": f'<div class="unsloth-nb-compare-static">{self.static_html()}</div>',
        }
        if widgets_can_render():
            bundle, _metadata = self.widget._repr_mimebundle_()
            data.update({k: v for k, v in bundle.items() if k != "text/plain"})
        return data

    def close(self) -> None:
        if self._widget is not None:
            self._widget.close()
            self._widget = None


def compare(jobs: Iterable[Job | str], *, title: str | None = None) -> CompareView:
    """Overlay the loss curves of ``jobs`` (Job handles or job ids); display the result."""
    return CompareView(jobs, title=title)


def _events(job: Job) -> list[Event]:
    if job.log is not None and job.log.read():
        return job.log.read()
    path = job.folder.events_path
    return list(read_events_file(path)) if path.exists() else []


def _label(job: Job) -> str:
    from unsloth_nb.ui.view_html import short_model

    config = job.config
    extra = f" lr {config.train.lr:g}" if getattr(config.train, "lr", None) is not None else ""
    return f"{job.id} · {short_model(job.config.model.name)}{extra}"
