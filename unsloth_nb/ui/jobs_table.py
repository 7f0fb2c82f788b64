"""``%unsloth_jobs``: the jobs recorded on this machine as one clean table.

Numbers are right-aligned under right-aligned headers, the result is short (``adapter``,
``stopped at step 50``, the first words of an error), and each row says how far the
job got: steps, final loss and eval loss, read from the tail of its event log.

In a notebook the table fits the cell's width: seven columns (:data:`CELL_COLUMNS`), each
with a small second line for a detail (how long the job took under its id, which holds
its start time; where it ran under its state; the dataset under the model), and the model
and result wrap instead of pushing the last columns out of sight. Everything else is one
**Show** away. A terminal gets every column (:data:`COLUMNS`) as aligned text.

In a notebook the table is a small widget: each row has a **Show** button (the job's
view appears under the table) and a checkbox; **Compare selected** overlays the
checked jobs' loss curves (:mod:`unsloth_nb.ui.compare`). Saved or converted
notebooks keep the static HTML table; a terminal gets aligned text.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from unsloth_nb.jobrun.store import JobRecord

__all__ = ["CELL_COLUMNS", "COLUMNS", "JobTable", "job_facts"]

#: (key, header, numeric)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("id", "job", False),
    ("state", "state", False),
    ("where", "where", False),
    ("model", "model", False),
    ("dataset", "dataset", False),
    ("started", "started", False),
    ("took", "took", True),
    ("steps", "steps", True),
    ("final_loss", "final loss", True),
    ("eval_loss", "eval loss", True),
    ("result", "result", False),
)
#: What a notebook cell shows: (key, header, numeric, key of the small second line, wraps).
CELL_COLUMNS: tuple[tuple[str, str, bool, str, bool], ...] = (
    ("id", "job", False, "took", False),
    ("state", "state", False, "where", False),
    ("model", "model", False, "dataset", True),
    ("steps", "steps", True, "", False),
    ("final_loss", "final loss", True, "", False),
    ("eval_loss", "eval loss", True, "", False),
    ("result", "result", False, "", True),
)
_STATE_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "cancelled": "#9a6700"}
#: Bytes read from the end of a job's events.jsonl for its last step and losses.
_TAIL_BYTES = 256 * 1024
_RESULT_CHARS = 48
_MODEL_CHARS = 40


def job_facts(events_path: Path) -> dict[str, Any]:
    """Last step, total steps, final train loss and last eval loss from the end of an events file."""
    facts: dict[str, Any] = {"step": None, "total": None, "loss": None, "eval_loss": None, "stop": None}
    try:
        with events_path.open("rb") as file:
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - _TAIL_BYTES))
            tail = file.read().decode("utf-8", errors="replace")
    except OSError:
        return facts
    lines = tail.splitlines()
    if size > _TAIL_BYTES:
        lines = lines[1:]  # the first line is cut
    for line in lines:
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        data, kind = raw.get("data") or {}, raw.get("kind")
        if kind in ("metrics", "progress") and data.get("step") is not None:
            facts["step"] = data["step"]
        if kind == "progress" and data.get("total_steps"):
            facts["total"] = data["total_steps"]
        if kind == "metrics" and data.get("loss") is not None:
            facts["loss"] = data["loss"]
        if kind == "metrics" and data.get("eval_loss") is not None:
            facts["eval_loss"] = data["eval_loss"]
    return facts


def _started(created: float, now: float) -> str:
    """``12-06 14:25`` this year, ``2025-12-06`` before: short enough never to wrap."""
    when = time.localtime(created)
    return time.strftime("%m-%d %H:%M" if when.tm_year == time.localtime(now).tm_year else "%Y-%m-%d", when)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _result(record: JobRecord, facts: dict[str, Any]) -> str:
    if record.state == "failed":
        return _short((record.error or "failed").splitlines()[0], _RESULT_CHARS)
    if record.state == "cancelled":
        return f"stopped at step {facts['step']:,}" if facts.get("step") else "stopped"
    if record.state == "succeeded":
        saved = [name for name in ("adapter", "merged_16bit") if record.artifacts.get(name)]
        return ", ".join(saved) if saved else "done"
    if record.owner_gone:
        return "owner gone: its process ended"
    return "running"


class JobTable:
    """Jobs recorded on this machine, newest first: a widget in a notebook, HTML or text elsewhere."""

    columns = tuple(header for _, header, _ in COLUMNS)

    def __init__(self, records: Iterable[JobRecord], limit: int = 20) -> None:
        self.records = list(records)
        self.limit = limit
        self._widget: Any = None
        self._output: Any = None
        self.shown: list[Any] = []  # what Show / Compare displayed (views, compare views)

    def __len__(self) -> int:
        return len(self.records)

    def row_dicts(self) -> list[dict[str, str]]:
        from unsloth_nb.ui.console import format_seconds
        from unsloth_nb.ui.view_html import short_model

        now = time.time()
        out = []
        for record in self.records[: self.limit]:
            from unsloth_nb.jobrun.store import jobs_root

            facts = job_facts(jobs_root() / record.id / "events.jsonl")
            end = record.finished if record.finished is not None else (now if not record.terminal else record.updated)
            steps = ""
            if facts["step"] is not None:
                steps = f"{facts['step']:,}" + (
                    f"/{facts['total']:,}" if facts["total"] and facts["total"] != facts["step"] else ""
                )
            out.append(
                {
                    "id": record.id,
                    "state": record.state_label(),
                    "where": record.placement + (f" ({record.gpu})" if record.gpu else ""),
                    "model": _short(short_model(record.model), _MODEL_CHARS),
                    "dataset": _short(Path(record.dataset).name if record.dataset else "", 24),
                    "started": _started(record.created, now),
                    "took": format_seconds(end - record.created),
                    "steps": steps,
                    "final_loss": f"{facts['loss']:.4f}" if facts["loss"] is not None else "–",
                    "eval_loss": f"{facts['eval_loss']:.4f}" if facts["eval_loss"] is not None else "–",
                    "result": _result(record, facts),
                }
            )
        return out

    def rows(self) -> list[tuple[str, ...]]:
        return [tuple(row[key] for key, _, _ in COLUMNS) for row in self.row_dicts()]

    def _more(self) -> str:
        extra = len(self.records) - self.limit
        return f"… and {extra} older job(s)" if extra > 0 else ""

    # -------------------------------------------------------------- text and HTML
    def __repr__(self) -> str:
        if not self.records:
            return "No jobs yet. Start one with %unsloth_train or unsloth_nb.train(...)."
        table = [self.columns, *self.rows()]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]

        def fmt(row: tuple[str, ...]) -> str:
            cells = [cell.rjust(widths[i]) if COLUMNS[i][2] else cell.ljust(widths[i]) for i, cell in enumerate(row)]
            return "  ".join(cells).rstrip()

        more = self._more()
        return "\n".join(
            [
                *(fmt(row) for row in table),
                *([more] if more else []),
                "Show one with unsloth_nb.load_job(ID).show() or %unsloth_jobs ID",
            ]
        )

    def _repr_html_(self) -> str:
        """The static table a saved or converted notebook keeps: the cell's columns, as the widget draws them."""
        if not self.records:
            return "<p>No jobs yet. Start one with <code>%unsloth_train</code> or <code>unsloth_nb.train(...)</code>.</p>"
        head = "".join(f"<th class='{'num' if num else ''}'>{html.escape(h)}</th>" for _, h, num, _, _ in CELL_COLUMNS)
        body = []
        for row in self.row_dicts():
            cells = []
            for key, _, num, sub, wraps in CELL_COLUMNS:
                classes = " ".join(
                    c
                    for c in (
                        "num" if num else "",
                        "wrap" if wraps else "",
                        key,
                        f"state-{row['state']}" if key == "state" else "",
                    )
                    if c
                )
                detail = f"<div class='sub'>{html.escape(row[sub])}</div>" if sub and row.get(sub) else ""
                cells.append(f"<td class='{classes}'>{html.escape(row[key])}{detail}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        more = self._more()
        foot = f"<p>{html.escape(more)}</p>" if more else ""
        hint = "<p style='font-size:11px'>Show one with <code>unsloth_nb.load_job(ID).show()</code> or <code>%unsloth_jobs ID</code>.</p>"
        return (
            f"<style>{_TABLE_CSS}</style><div class='unsloth-nb-jobs-table'><table class='unsloth-nb-jobs'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{foot}{hint}"
        )

    # -------------------------------------------------------------- the widget
    @property
    def widget(self) -> Any:
        """The table with Show buttons and Compare, and the output area they draw into."""
        if self._widget is None:
            import ipywidgets as widgets

            table = _table_widget_class()(columns=[list(c) for c in CELL_COLUMNS], rows=self.row_dicts(), more=self._more())
            table.on_msg(self._on_msg)
            self._output = widgets.Output()
            self._widget = widgets.VBox([table, self._output])
            self._widget.add_class("unsloth-nb-jobs-widget")
        return self._widget

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "show" and content.get("id"):
            self.show(str(content["id"]))
        elif content.get("type") == "compare" and content.get("ids"):
            self.compare([str(i) for i in content["ids"]])

    def show(self, job_id: str) -> Any:
        """Draw one job's view under the table (what its Show button does)."""
        from unsloth_nb.jobrun.controller import load_job
        from unsloth_nb.ui.view import JobView

        return self._draw(lambda: JobView(load_job(job_id)))

    def compare(self, job_ids: list[str]) -> Any:
        """Overlay the loss curves of ``job_ids`` under the table (what Compare selected does)."""
        from unsloth_nb.ui.compare import CompareView

        return self._draw(lambda: CompareView(job_ids))

    def _draw(self, make: Any) -> Any:
        from IPython.display import display

        self.widget  # noqa: B018  (the output area)
        with self._output:
            self._output.clear_output()
            try:
                shown = make()
            except Exception as exc:  # e.g. a job folder removed since the table was drawn
                print(f"Could not show it: {exc}")
                return None
            display(shown)
        self.shown.append(shown)
        return shown

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from unsloth_nb.ui.chart import widgets_can_render

        data: dict[str, Any] = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if self.records and widgets_can_render():
            bundle = self.widget._repr_mimebundle_()
            data.update({k: v for k, v in (bundle or {}).items() if k != "text/plain"})
        return data


_TABLE_ESM = r"""
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "unsloth-nb-jobs-table";
  el.style.maxWidth = "100%";
  el.append(root);
  function draw() {
    const columns = model.get("columns");
    const rows = model.get("rows");
    root.replaceChildren();
    const table = document.createElement("table");
    table.className = "unsloth-nb-jobs";
    const head = table.createTHead().insertRow();
    head.append(document.createElement("th"), document.createElement("th"));
    for (const [, label, numeric] of columns) {
      const th = document.createElement("th");
      th.textContent = label;
      if (numeric) th.className = "num";
      head.append(th);
    }
    const body = table.createTBody();
    const checks = [];
    for (const row of rows) {
      const tr = body.insertRow();
      tr.dataset.job = row.id;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.title = "select to compare";
      box.addEventListener("change", update);
      checks.push([box, row.id]);
      const pick = tr.insertCell();
      pick.className = "pick";
      pick.append(box);
      const show = document.createElement("button");
      show.textContent = "Show";
      show.className = "unsloth-nb-show jupyter-button";
      show.title = "draw this job's view below";
      show.addEventListener("click", () => model.send({ type: "show", id: row.id }));
      const open = tr.insertCell();
      open.className = "pick";
      open.append(show);
      for (const [key, , numeric, sub, wraps] of columns) {
        const td = tr.insertCell();
        td.textContent = row[key];
        td.classList.add(key);
        if (numeric) td.classList.add("num");
        if (wraps) td.classList.add("wrap");
        if (key === "state") td.classList.add("state-" + row.state);
        if (sub && row[sub]) {
          const detail = document.createElement("div");
          detail.className = "sub";
          detail.textContent = row[sub];
          td.append(detail);
        }
      }
    }
    const bar = document.createElement("div");
    bar.className = "unsloth-nb-jobs-bar";
    const compare = document.createElement("button");
    compare.className = "unsloth-nb-compare jupyter-button";
    compare.textContent = "Compare selected";
    compare.title = "overlay the checked jobs' loss curves below";
    compare.addEventListener("click", () => {
      const ids = checks.filter(([b]) => b.checked).map(([, id]) => id);
      if (ids.length) model.send({ type: "compare", ids });
    });
    const more = document.createElement("span");
    more.textContent = model.get("more") || "";
    bar.append(compare, more);
    function update() {
      const n = checks.filter(([b]) => b.checked).length;
      compare.disabled = n === 0;
      compare.textContent = n ? `Compare selected (${n})` : "Compare selected";
    }
    update();
    root.append(table, bar);
  }
  draw();
  model.on("change:rows", draw);
  return () => model.off("change:rows", draw);
}
export default { render };
"""

_TABLE_CSS = """
.unsloth-nb-jobs-table { max-width: 100%; }
.unsloth-nb-jobs-table table { border-collapse: collapse; font-size: 11px; font-family: var(--jp-ui-font-family, sans-serif);
  max-width: 100%; }
.unsloth-nb-jobs-table th, .unsloth-nb-jobs-table td { padding: 2px 6px; white-space: nowrap; text-align: left;
  vertical-align: top; }
.unsloth-nb-jobs-table td.pick { vertical-align: middle; padding: 0 2px; }
.unsloth-nb-jobs-table td.pick button { margin: 0; }
.unsloth-nb-jobs-table td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 7em; max-width: 16em; }
.unsloth-nb-jobs-table th { border-bottom: 1px solid var(--jp-border-color1, #ccc); font-weight: 600; }
.unsloth-nb-jobs-table tbody tr { border-bottom: 1px solid var(--jp-border-color3, #eee); }
.unsloth-nb-jobs-table tbody tr:hover { background: var(--jp-layout-color2, #f3f3f3); }
.unsloth-nb-jobs-table .num { text-align: right; font-variant-numeric: tabular-nums; }
.unsloth-nb-jobs-table td.id { font-family: var(--jp-code-font-family, monospace); }
.unsloth-nb-jobs-table .sub { font-size: 10px; color: var(--jp-ui-font-color2, #666); font-family: var(--jp-ui-font-family, sans-serif); }
.unsloth-nb-jobs-table .state-succeeded { color: #1a7f37; }
.unsloth-nb-jobs-table .state-failed { color: #cf222e; }
.unsloth-nb-jobs-table .state-cancelled { color: #9a6700; }
.unsloth-nb-jobs-table button { font-size: 11px; padding: 0 8px; height: 22px; cursor: pointer; }
.unsloth-nb-jobs-bar { display: flex; gap: 12px; align-items: center; margin: 6px 0; font-size: 11px; }
"""


@cache
def _table_widget_class() -> type:
    import anywidget
    import traitlets

    class JobTableWidget(anywidget.AnyWidget):
        """The rows as plain strings; clicks come back as custom messages."""

        _esm = _TABLE_ESM
        _css = _TABLE_CSS
        columns: traitlets.List[list[str]] = traitlets.List().tag(sync=True)
        rows: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
        more = traitlets.Unicode("").tag(sync=True)

    return JobTableWidget
