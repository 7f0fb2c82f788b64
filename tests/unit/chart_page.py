"""Draw a chart's messages with the page's own code (``static/chart.js`` under node), without a browser.

The ESM's ``createStore``, ``plotTraces`` and ``traceExtension`` are what a view calls; this driver calls
them in the same order (a reset redraws every trace from the store, an extend appends what a delta added),
so a test sees the x and y arrays Plotly would be handed, smoothed curves included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from unsloth_nb.ui import chart as chart_module

CHART_JS = Path(chart_module.__file__).with_name("static") / "chart.js"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

_DRIVER = """
import {{ createStore, plotTraces, traceExtension }} from {module};
let input = "";
for await (const chunk of process.stdin) input += chunk;
const {{ spec, messages }} = JSON.parse(input);
const store = createStore({{ now: () => 0 }});
let drawn = [];
let emaStates = {{}};
const smoothing = () => store.smoothing ?? spec.layout?.meta?.smoothing ?? 0.6;
for (const msg of messages) {{
  const result = store.apply(msg);
  if (result.kind === "reset") {{
    emaStates = {{}};
    drawn = plotTraces(spec, store, smoothing(), emaStates).map((t) => ({{ x: t.x, y: t.y, mode: t.mode }}));
  }} else if (result.kind === "extend") {{
    const {{ update, indices }} = traceExtension(spec, store, result.added, smoothing(), emaStates);
    indices.forEach((index, k) => {{
      drawn[index].x.push(...update.x[k]);
      drawn[index].y.push(...update.y[k]);
    }});
  }}
}}
console.log(JSON.stringify({{ drawn, smoothing: smoothing() }}));
"""


def draw_in_node(spec: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"drawn": [{"x": [...], "y": [...], "mode": ...} per spec trace], "smoothing": s}`` as the page draws them."""
    driver = _DRIVER.format(module=json.dumps(CHART_JS.as_uri()))
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", driver],
        input=json.dumps({"spec": spec, "messages": messages}),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)
