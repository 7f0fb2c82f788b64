"""What the loss chart looks like: its traces and layout, and a plotly Figure drawn from them.

One spec serves the live widget (it travels in the widget's synced ``spec`` trait
and ``static/chart.js`` draws it), :meth:`~unsloth_nb.ui.chart.LossChart.figure`
and the static exports in :mod:`unsloth_nb.ui.loss_static`, so all three look
alike; it lives here so that neither side has to import the other. Building the
spec needs no plotly; only :func:`_build_figure` imports it, when called.

The loss has the large top panel; learning rate, tokens/s and grad norm each get a
small panel of their own under it, on the same step axis (one unified hover reads
"step 21" and every value at that step). Steps are whole numbers on the axis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unsloth_nb.ui.loss_series import smoothed

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["HEIGHT", "PANELS"]

#: Plot height in pixels of a LossChart and of :func:`~unsloth_nb.ui.loss_static.static_figure`.
HEIGHT = 460
#: The small panels under the loss: (column of the train table, axis title, tick format, colour).
PANELS: tuple[tuple[str, str, str, str], ...] = (
    ("lr", "learning rate", "~g", "#2ca02c"),  # 0.0002, not 2e-4 beside a "0e+0"
    ("tps", "tokens/s", "~s", "#9467bd"),
    ("gn", "grad norm", ".2~g", "#8c564b"),
)
#: Share of the plot height the loss panel takes; the rest is split among the small panels.
_LOSS_SHARE = 0.58
_GAP = 0.04


def _domains(panels: int) -> list[list[float]]:
    """Vertical domains, top (loss) first."""
    if panels == 0:
        return [[0.0, 1.0]]
    small = (1.0 - _LOSS_SHARE - _GAP * panels) / panels
    domains = [[1.0 - _LOSS_SHARE, 1.0]]
    top = 1.0 - _LOSS_SHARE - _GAP
    for _ in range(panels):
        domains.append([round(max(top - small, 0.0), 4), round(top, 4)])
        top -= small + _GAP
    return domains


def _figure_spec(title: str | None, height: int, smoothing: float | None = None) -> dict[str, Any]:
    """Traces and layout shared by the live widget and the static figure.

    ``table``/``column`` say where a trace's data lives; ``smooth`` marks a trace whose
    y is the smoothed ``column`` (the page computes it with the smoothing control's value,
    ``layout.meta.smoothing`` until the user moves it); the rest is Plotly.
    """
    hover = "%{y:.4g}"
    traces: list[dict[str, Any]] = [
        {"table": "train", "column": "loss", "name": "train loss", "mode": "lines", "line": {"color": "#9ec5f0", "width": 1}},
        {
            "table": "train",
            "column": "loss",
            "smooth": True,
            "name": "train loss (smoothed)",
            "mode": "lines",
            "line": {"color": "#1f5fbf", "width": 2},
        },
        {"table": "eval", "column": "loss", "name": "eval loss", "mode": "markers", "marker": {"color": "#d62728", "size": 7}},
    ]
    domains = _domains(len(PANELS))
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 64, "r": 16, "t": 56 if title else 28, "b": 36},
        "xaxis": {
            "title": {"text": "step", "standoff": 4},
            "zeroline": False,
            "tickformat": "d",
            "anchor": f"y{len(PANELS) + 1}" if PANELS else "y",
            "unifiedhovertitle": {"text": "step %{x:,}"},
        },
        "yaxis": {"title": {"text": "loss"}, "zeroline": False, "automargin": True, "domain": domains[0]},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11}},
        "hovermode": "x unified",
        "hoversubplots": "axis",
        "uirevision": "unsloth-nb-loss",
        "meta": {"smoothing": smoothing},
    }
    for i, (column, label, tickformat, colour) in enumerate(PANELS, start=2):
        traces.append(
            {
                "table": "train",
                "column": column,
                "name": label,
                "mode": "lines",
                "yaxis": f"y{i}",
                "showlegend": False,
                "line": {"color": colour, "width": 1.5},
            }
        )
        layout[f"yaxis{i}"] = {
            "title": {"text": label, "font": {"size": 10}},
            "domain": domains[i - 1],
            "tickformat": tickformat,
            "nticks": 3,
            "zeroline": False,
            "automargin": True,
            "tickfont": {"size": 9},
        }
    for trace in traces:
        trace.update(type="scatter", connectgaps=True, hovertemplate=hover)
    if title:
        layout["title"] = {
            "text": title,
            "x": 0,
            "xanchor": "left",
            "yref": "container",
            "y": 0.985,
            "yanchor": "top",
            "font": {"size": 14},
        }
        layout["legend"]["y"] = 1.01
    return {"traces": traces, "layout": layout, "config": {"displaylogo": False, "responsive": True}}


def _trace_values(trace: dict[str, Any], table: dict[str, list[Any]], smoothing: float, width: int) -> list[Any]:
    values = table.get(trace["column"], [])
    return smoothed(values, smoothing, width) if trace.get("smooth") else values


def _build_figure(
    spec: dict[str, Any],
    tables: dict[str, dict[str, list[Any]]],
    *,
    smoothing: float,
    widths: dict[str, int] | None = None,
    log_y_menu: bool = False,
) -> go.Figure:
    """A plotly Figure of table payloads (``{table: {"x": [...], column: [...]}}``) drawn as ``spec`` says.

    Traces without a value are left out (no "eval loss" legend entry for a run without
    evaluation); ``log_y_menu`` adds linear/log buttons (a standalone file has no page controls).
    """
    import plotly.graph_objects as go

    widths = widths or {}
    traces = []
    for trace in spec["traces"]:
        table = tables.get(trace["table"]) or {"x": []}
        y = _trace_values(trace, table, smoothing, widths.get(trace["table"], 1))
        if not any(v is not None for v in y):
            continue
        attrs = {k: v for k, v in trace.items() if k not in ("table", "column", "type", "smooth")}
        traces.append(go.Scatter(x=table["x"], y=y, **attrs))
    layout = dict(spec["layout"])
    steps = [x for t in tables.values() for x in t.get("x", [])]
    if steps and max(steps) <= 10:
        layout["xaxis"] = {**layout["xaxis"], "dtick": 1}
    if log_y_menu:
        layout["updatemenus"] = [
            {
                "type": "buttons",
                "direction": "right",
                "x": 1.0,
                "xanchor": "right",
                "y": 1.12,
                "yanchor": "bottom",
                "pad": {"t": 0, "r": 0},
                "font": {"size": 10},
                "buttons": [
                    {"label": "linear", "method": "relayout", "args": [{"yaxis.type": "linear"}]},
                    {"label": "log y", "method": "relayout", "args": [{"yaxis.type": "log"}]},
                ],
            }
        ]
    return go.Figure(data=traces, layout=go.Layout(layout, template="none"))
