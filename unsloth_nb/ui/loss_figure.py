"""What the loss chart looks like: its traces and layout, and a plotly Figure drawn from them.

One spec serves the live widget (it travels in the widget's synced ``spec`` trait
and ``static/chart.js`` draws it), :meth:`~unsloth_nb.ui.chart.LossChart.figure`
and the static exports in :mod:`unsloth_nb.ui.loss_static`, so all three look
alike; it lives here so that neither side has to import the other. Building the
spec needs no plotly; only :func:`_build_figure` imports it, when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["HEIGHT"]

#: Plot height in pixels of a LossChart and of :func:`~unsloth_nb.ui.loss_static.static_figure`.
HEIGHT = 320


def _figure_spec(title: str | None, height: int) -> dict[str, Any]:
    """Traces and layout shared by the live widget and the static figure.

    ``table``/``column`` say where a trace's data lives; the rest is Plotly.
    Learning rate and tokens/s start hidden (legend click shows them); their
    axes follow their traces' visibility.
    """
    traces: list[dict[str, Any]] = [
        {"table": "train", "column": "loss", "name": "train loss", "mode": "lines", "line": {"color": "#9ec5f0", "width": 1}},
        {
            "table": "train",
            "column": "ema",
            "name": "train loss (smoothed)",
            "mode": "lines",
            "line": {"color": "#1f5fbf", "width": 2},
        },
        {"table": "eval", "column": "loss", "name": "eval loss", "mode": "markers", "marker": {"color": "#d62728", "size": 7}},
        {
            "table": "train",
            "column": "lr",
            "name": "learning rate",
            "mode": "lines",
            "yaxis": "y2",
            "visible": "legendonly",
            "line": {"color": "#2ca02c", "width": 1.5, "dash": "dot"},
        },
        {
            "table": "train",
            "column": "tps",
            "name": "tokens/s",
            "mode": "lines",
            "yaxis": "y3",
            "visible": "legendonly",
            "line": {"color": "#9467bd", "width": 1.5},
        },
    ]
    for trace in traces:
        trace.update(type="scatter", connectgaps=True, hovertemplate="%{y:.4g}")
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 56, "r": 24, "t": 64 if title else 8, "b": 40},
        "xaxis": {"title": {"text": "step"}, "zeroline": False},
        "yaxis": {"title": {"text": "loss"}, "zeroline": False, "automargin": True},
        "yaxis2": {
            "title": {"text": "learning rate"},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "visible": False,
            "automargin": True,
            "tickformat": ".1e",
            "rangemode": "tozero",
        },
        "yaxis3": {
            "title": {"text": "tokens/s"},
            "overlaying": "y",
            "side": "right",
            "anchor": "free",
            "autoshift": True,
            "showgrid": False,
            "visible": False,
            "automargin": True,
            "rangemode": "tozero",
        },
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11}},
        "hovermode": "x unified",
        "uirevision": "unsloth-nb-loss",
    }
    if title:
        layout["title"] = {"text": title, "x": 0, "xanchor": "left", "yref": "container", "y": 0.98, "yanchor": "top"}
        layout["legend"]["y"] = 1.02
    return {"traces": traces, "layout": layout, "config": {"displaylogo": False, "responsive": True}}


def _build_figure(spec: dict[str, Any], tables: dict[str, dict[str, list[Any]]]) -> go.Figure:
    """A plotly Figure of table payloads (``{table: {"x": [...], column: [...]}}``) drawn as ``spec`` says."""
    import plotly.graph_objects as go

    traces = []
    for trace in spec["traces"]:
        attrs = {k: v for k, v in trace.items() if k not in ("table", "column", "type")}
        table = tables[trace["table"]]
        traces.append(go.Scatter(x=table["x"], y=table[trace["column"]], **attrs))
    return go.Figure(data=traces, layout=go.Layout(spec["layout"], template="none"))
