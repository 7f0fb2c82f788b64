"""The loss chart without a live kernel: a plotly Figure, a standalone HTML file, an inline-SVG picture.

These need no widget, comm or front end: :func:`static_figure` and
:func:`write_loss_html` draw a finished job's events (after the run, from a
script, in ``unsloth-nb`` tooling), and :func:`_svg_html` is the picture a
LossChart's mimebundle carries where widgets cannot render (nbconvert, GitHub,
terminal IPython). They build on the same history (:mod:`unsloth_nb.ui.loss_series`)
and spec (:mod:`unsloth_nb.ui.loss_figure`) as the live chart, so an export looks
like what the notebook showed, and import nothing from the widget side.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unsloth_nb.jobs.events import Event
from unsloth_nb.ui.loss_figure import HEIGHT, _build_figure, _figure_spec
from unsloth_nb.ui.loss_series import MAX_POINTS, SMOOTHING, LossHistory

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["static_figure", "write_loss_html"]

#: Shown/hidden secondary axes follow a legend click; used in the standalone HTML file
#: (the widget's ESM does the same).
_AXIS_SYNC_JS = """
var gd = document.getElementById('{plot_id}');
function unslothNbSyncAxes() {
  var want = {};
  gd.data.forEach(function (t) {
    if (t.yaxis && t.yaxis !== 'y') {
      var key = 'yaxis' + t.yaxis.slice(1);
      want[key] = want[key] || t.visible === true || t.visible === undefined;
    }
  });
  var change = {};
  Object.keys(want).forEach(function (key) {
    if ((gd.layout[key] || {}).visible !== want[key]) { change[key + '.visible'] = want[key]; }
  });
  if (Object.keys(change).length) { Plotly.relayout(gd, change); }
}
gd.on('plotly_restyle', unslothNbSyncAxes);
"""


def static_figure(
    events: Iterable[Event], *, title: str | None = None, max_points: int = MAX_POINTS, smoothing: float = SMOOTHING
) -> go.Figure:
    """A plotly Figure of a job's loss curve from its events (same look as the live chart)."""
    history = LossHistory(max_points, smoothing)
    for event in events:
        history.ingest(event)
    return _build_figure(_figure_spec(title, HEIGHT), history.payloads(with_open=True))


def write_loss_html(events: Iterable[Event], path: str | Path, *, title: str | None = "Training loss") -> Path:
    """Write a standalone HTML file of the loss curve with plotly.js embedded (works offline)."""
    figure = static_figure(events, title=title)
    figure.update_layout(height=480)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(
        target,
        include_plotlyjs=True,
        full_html=True,
        config={"displaylogo": False, "responsive": True},
        post_script=_AXIS_SYNC_JS,
    )
    return target


_SVG_W, _SVG_H = 640, 220
_SVG_MARGIN = {"l": 52, "r": 12, "t": 22, "b": 28}
_SVG_MAX_POINTS = 500


def _svg_html(train: dict[str, list[Any]], evals: dict[str, list[Any]], summary: str, title: str | None) -> str:
    """Inline SVG of loss, smoothed loss and eval points; a few KB, no scripts."""
    caption = f'<div style="font:12px sans-serif;color:#555">{html.escape(summary)}</div>'
    heading = f'<div style="font:bold 13px sans-serif">{html.escape(title)}</div>' if title else ""
    series = [
        (train["x"], train["loss"], "#9ec5f0", "line"),
        (train["x"], train["ema"], "#1f5fbf", "line"),
        (evals["x"], evals["loss"], "#d62728", "points"),
    ]
    finite_y = [y for _, ys, _, _ in series for y in ys if y is not None]
    finite_x = [x for xs, ys, _, _ in series for x, y in zip(xs, ys, strict=True) if y is not None]
    if not finite_y:
        return f'<div class="unsloth-nb-loss-static">{heading}{caption}</div>'
    x0, x1 = min(finite_x), max(finite_x)
    y0, y1 = min(finite_y), max(finite_y)
    pad = (y1 - y0) * 0.05 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    m = _SVG_MARGIN
    pw, ph = _SVG_W - m["l"] - m["r"], _SVG_H - m["t"] - m["b"]

    def px(x: float) -> str:
        return f"{m['l'] + (x - x0) / (x1 - x0) * pw:.1f}"

    def py(y: float) -> str:
        return f"{m['t'] + (1 - (y - y0) / (y1 - y0)) * ph:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_SVG_W}" height="{_SVG_H}" viewBox="0 0 {_SVG_W} {_SVG_H}" '
        'style="font:11px sans-serif;background:#fff">',
        f'<rect x="{m["l"]}" y="{m["t"]}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>',
    ]
    for value in (y0 + pad, (y0 + y1) / 2, y1 - pad):
        parts.append(f'<text x="{m["l"] - 4}" y="{py(value)}" text-anchor="end" dominant-baseline="middle">{value:.3g}</text>')
    for value, anchor in ((x0, "start"), (x1, "end")):
        parts.append(f'<text x="{px(value)}" y="{_SVG_H - 10}" text-anchor="{anchor}">step {value:,.0f}</text>')
    for xs, ys, color, kind in series:
        stride = max(1, math.ceil(len(xs) / _SVG_MAX_POINTS))
        picked = [(x, y) for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if (i % stride == 0 or i == len(xs) - 1)]
        if kind == "points":
            parts.extend(f'<circle cx="{px(x)}" cy="{py(y)}" r="3" fill="{color}"/>' for x, y in picked if y is not None)
            continue
        path, pen_down = [], False
        for x, y in picked:
            if y is None:
                continue  # connect across gaps, as the live chart does
            path.append(f"{'L' if pen_down else 'M'}{px(x)} {py(y)}")
            pen_down = True
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    legend = (("train loss", "#9ec5f0"), ("smoothed", "#1f5fbf"), ("eval loss", "#d62728"))
    for i, (label, color) in enumerate(legend):
        parts.append(f'<text x="{m["l"] + 4 + i * 110}" y="14" fill="{color}">■ {label}</text>')
    parts.append("</svg>")
    return f'<div class="unsloth-nb-loss-static">{heading}{"".join(parts)}{caption}</div>'
