"""No "null" tooltips.

ipywidgets 8 copies a widget's ``tooltip`` into the page's ``title`` attribute as
it is, so every widget left at None (the labels of text boxes, HTML blocks, the
Upload button) shows a tooltip reading "null" on hover. Every view we display
goes through :func:`no_null_tooltips` first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["no_null_tooltips"]


def no_null_tooltips(root: Any) -> None:
    """Give every widget under ``root`` a tooltip string.

    ipywidgets 8 copies ``tooltip`` into the DOM's ``title`` as is, so a widget left at
    None shows a "null" tooltip on hover (the labels of text boxes, the Upload button).
    """
    import ipywidgets

    todo, seen = [root], set()
    while todo:
        widget = todo.pop()
        if not isinstance(widget, ipywidgets.Widget) or id(widget) in seen:
            continue
        seen.add(id(widget))
        if widget.has_trait("tooltip") and widget.tooltip is None:
            widget.tooltip = str(getattr(widget, "description", "") or "")
        todo.extend(getattr(widget, "children", ()) or ())
