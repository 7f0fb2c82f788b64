"""How a job view looks as text and HTML: the status line, messages, the log window, the summary, Try it's answers.

Plain functions of plain values, so the live widgets, the static snapshot a saved notebook keeps and the
jobs table render the same pieces the same way.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from unsloth_nb.jobrun.events import Event

#: A single log message is cut at this many characters (a 10 MB repr must not reach the page).
MAX_MESSAGE_CHARS = 2000

STATE_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "cancelled": "#9a6700"}
BAR_STYLES = {"succeeded": "success", "failed": "danger", "cancelled": "warning"}


def short_model(name: str) -> str:
    """A local model folder shows as its name; a Hub id as it is."""
    if name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1:
        return Path(name).name or name
    return name


def log_lines(event: Event) -> list[str]:
    """The lines an event adds to the log window (metrics and progress go to the chart instead)."""
    data = event.data
    kind = event.kind
    if kind == "log":
        level = str(data.get("level") or "info")
        prefix = "" if level == "info" else f"{level.upper()}: "
        text = prefix + str(data.get("message", ""))
    elif kind == "status":
        text = f"→ {data.get('state')}" + (f": {data['reason']}" if data.get("reason") else "")
    elif kind == "error":
        text = f"ERROR: {data.get('message', '')}"
    elif kind == "artifact":
        text = f"saved {data.get('name')}: {data.get('path') or data.get('url') or ''}"
    elif kind == "checkpoint" and data.get("url"):
        text = f"checkpoint at step {data.get('step')} pushed to the Hub: {data['url']}"
    elif kind == "checkpoint":
        text = f"checkpoint at step {data.get('step')}: {data.get('path')}"
    elif kind == "summary" and "rows" in data:
        text = f"dataset: {data.get('rows')} rows, {data.get('format')}, {data.get('skipped', 0)} skipped"
    elif kind == "summary" and "model" in data:
        params = f", {data['params']:,} parameters" if isinstance(data.get("params"), int) else ""
        text = f"model: {data.get('model')}{params}" + (f" on {data['device']}" if data.get("device") else "")
    else:
        return []
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " …"
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    return [f"{stamp} {line}" for line in text.splitlines() or [""]]


def status_html(parts: list[str]) -> str:
    state, rest = parts[0], parts[1:]
    colour = STATE_COLOURS.get(state, "inherit")
    head = f'<b style="color:{colour}">{html.escape(state)}</b>'
    return (
        '<div class="unsloth-nb-status" style="font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:1.5">'
        + " · ".join([head, *(html.escape(p) for p in rest)])
        + "</div>"
    )


def message_html(text: str, failed: bool) -> str:
    if not text:
        return ""
    colour = "#cf222e" if failed else "inherit"
    # A long path wraps after a "/" rather than inside a name (<wbr> adds nothing when the text is copied).
    body = html.escape(text).replace("/", "/<wbr>")
    return (
        f'<pre style="white-space:pre-wrap;word-break:normal;overflow-wrap:anywhere;margin:4px 0;color:{colour};'
        f'font-size:12px">{body}</pre>'
    )


def log_html(text: str) -> str:
    # column-reverse keeps the scroll position at the newest line without any script.
    return (
        '<div style="max-height:16em;overflow-y:auto;display:flex;flex-direction:column-reverse">'
        '<pre style="margin:0;font-size:11px;white-space:pre-wrap">' + html.escape(text) + "</pre></div>"
    )


def show(widget: Any, visible: bool) -> None:
    value = None if visible else "none"
    if widget.layout.display != value:
        widget.layout.display = value


def summary_html(items: list[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div style="display:inline-block;margin:2px 18px 2px 0"><div style="font-size:10px;color:#666">{html.escape(label)}'
        f'</div><div style="font-size:13px;font-weight:600">{html.escape(value)}</div></div>'
        for label, value in items
    )
    return f'<div class="unsloth-nb-summary" style="font-family:var(--jp-ui-font-family,sans-serif);margin:4px 0">{cells}</div>'


def answers_html(question: str, answers: dict[str, str]) -> str:
    columns = "".join(
        f'<div style="flex:1 1 0;min-width:200px"><div style="font-size:10px;color:#666">{html.escape(label)}</div>'
        f'<pre style="white-space:pre-wrap;word-break:normal;overflow-wrap:anywhere;margin:2px 0;font-size:12px">'
        f"{html.escape(answer.strip()) or '<i>(an empty answer)</i>'}</pre></div>"
        for label, answer in answers.items()
    )
    return (
        f'<div class="unsloth-nb-answers"><div style="font-size:12px;margin:2px 0">Q: {html.escape(question)}</div>'
        f'<div style="display:flex;gap:16px">{columns}</div></div>'
    )


def progress_html(step: int, total: int, state: str) -> str:
    """A progress bar and its step counter, drawn in HTML: one widget message with the status, not two more widgets."""
    if state == "succeeded" and not total:
        total = step = max(step, 1)
    colour = STATE_COLOURS.get(state, "#2f81f7")
    fraction = min(step / total, 1.0) if total else 0.0
    counter = f"{step:,}/{total:,}" if total else (f"{step:,}" if step else "")
    return (
        f'<div class="unsloth-nb-progress {BAR_STYLES.get(state, "running")}" data-progress="{step}/{total}"'
        ' style="display:flex;align-items:center;gap:8px;margin:3px 0">'
        '<div style="flex:1 1 auto;height:10px;border-radius:5px;background:var(--jp-layout-color3,#ddd);overflow:hidden">'
        f'<div style="width:{fraction * 100:.1f}%;height:100%;background:{colour}"></div></div>'
        f'<span style="font-size:12px;white-space:nowrap">{counter}</span></div>'
    )


def header_html(parts: list[str], step: int, total: int, outcome: str) -> str:
    """The top of a live view: status line, progress bar and outcome, sent as one value."""
    state = parts[0]
    return status_html(parts) + progress_html(step, total, state) + message_html(outcome, state == "failed")
