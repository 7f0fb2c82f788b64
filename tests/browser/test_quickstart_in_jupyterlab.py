"""The quickstart, opened and run in a real JupyterLab by a real Chromium.

What a user sees is what is asserted: the job view's status line reading
``succeeded``, a loss curve of at least 20 points drawn by plotly in the page,
and a second, long job, started from a cell the test types in, stopped with the
view's own Stop button and reading ``cancelled``. Screenshots of each stage land
in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixtures' types; pytest, not an import, provides the objects
    from conftest import Lab, LabServer, PageRecord
    from playwright.sync_api import Locator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = REPO_ROOT / "notebooks" / "01_quickstart.ipynb"

#: Typed into a new cell through the UI: the quickstart's own model and data, 2000 steps, shown live.
LONG_JOB_CELL = (
    "%unsloth_train --model {MODEL} --dataset {DATASET} --max-steps 2000 --lr 1e-3 --batch-size 4 "
    "--grad-accum 1 --warmup-steps 5 --max-seq-length {MAX_SEQ_LENGTH} --placement local -o long_job"
)

MIN_POINTS = 20
#: Deadlines are generous: 2 shared CPU cores, a cold kernel importing the training stack.
TRAIN_MS = 240_000
START_MS = 120_000
CANCEL_MS = 120_000

#: One job view (a ``.unsloth-nb-job`` box) as the page renders it: status line, chart, plotly's own DOM.
READ_VIEW_JS = """
(box) => {
  const status = box.querySelector('.unsloth-nb-status');
  const chart = box.querySelector('.unsloth-nb-chart');
  const plot = box.querySelector('.js-plotly-plot');
  const line = plot ? plot.querySelector('.scatterlayer g.trace path.js-line') : null;
  const path = line ? line.getAttribute('d') || '' : '';
  const stop = Array.from(box.querySelectorAll('button')).find((b) => b.textContent.includes('Stop'));
  return {
    state: status ? (status.querySelector('b') || status).textContent.trim() : '',
    status: status ? status.textContent.trim() : '',
    chartPoints: chart ? Number(chart.dataset.points || 0) : 0,
    traces: plot ? plot.querySelectorAll('.scatterlayer g.trace').length : 0,
    traceNames: plot && plot.data ? plot.data.map((t) => t.name) : [],
    plottedPoints: plot && plot.data && plot.data[0] ? plot.data[0].x.length : 0,
    lineVertices: (path.match(/[ML]/g) || []).length,
    stopDisabled: stop ? stop.disabled : null,
    text: box.innerText,
  };
}
"""


def read_view(view: Locator) -> dict[str, Any]:
    return view.evaluate(READ_VIEW_JS)


def wait_for_view(lab: Lab, view: Locator, ready: Callable[[dict[str, Any]], bool], timeout_ms: int, what: str) -> dict[str, Any]:
    """Read the view every half second until ``ready(view)`` holds.

    The locator is resolved afresh on each read, so a view that JupyterLab re-renders
    is followed rather than read stale from a detached node.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    seen: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if view.count():
            seen = read_view(view)
            if ready(seen):
                return seen
        lab.page.wait_for_timeout(500)
    raise AssertionError(
        f"waited {timeout_ms / 1000:.0f} s for {what}; the view shows {seen}\nserver log:\n{lab.server.log_tail()}"
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_quickstart_trains_draws_and_stops(lab: Lab, lab_server: LabServer, page_record: PageRecord) -> None:
    committed = digest(QUICKSTART)
    notebook = lab_server.copy_notebook(QUICKSTART)
    lab.open(notebook)
    lab.screenshot("01-quickstart-opened")

    lab.run_all()
    live = lab.page.locator(".unsloth-nb-job").first  # the view under the %unsloth_train cell
    done = wait_for_view(
        lab, live, lambda v: v["state"] == "succeeded" and v["chartPoints"] >= MIN_POINTS, TRAIN_MS, "the job to succeed"
    )
    lab.wait_idle(TRAIN_MS)  # the cells after the job (answers, loss.html, job list, redraw) ran too
    lab.screenshot("02-quickstart-succeeded-job-view", live)
    job_list = lab.page.locator(".jp-CodeCell").filter(has_text="%unsloth_jobs")
    job_list.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    lab.screenshot("03-quickstart-job-list-and-redraw")

    # What plotly drew, not only what the kernel sent: the train-loss trace's data and its SVG path.
    assert done["traceNames"][:1] == ["train loss"], done
    assert done["plottedPoints"] >= MIN_POINTS, done
    assert done["traces"] >= 1, done
    assert done["lineVertices"] >= MIN_POINTS // 2, f"the loss line has too few vertices: {done}"
    assert f"step {done['plottedPoints']}/" in done["status"], done
    assert done["stopDisabled"] is True, f"a finished job's Stop button must be disabled: {done}"
    listed = job_list.locator("table.unsloth-nb-jobs tbody tr")
    assert listed.count() == 1 and "succeeded" in listed.inner_text(), "the job list does not show the finished job"
    tracebacks = lab.page.locator("[data-mime-type='application/vnd.jupyter.error']")
    assert tracebacks.count() == 0, f"a quickstart cell failed: {tracebacks.first.inner_text()}"

    long_cell = lab.add_code_cell(LONG_JOB_CELL)
    lab.run_cell(long_cell)
    long_view = long_cell.locator(".unsloth-nb-job")
    running = wait_for_view(
        lab,
        long_view,
        lambda v: v["state"] == "training" and v["chartPoints"] >= 1 and v["stopDisabled"] is False,
        START_MS,
        "the long job to start training",
    )
    assert "/2,000" in running["status"], running
    lab.screenshot("04-long-job-training", long_view)

    long_view.locator("button", has_text="Stop").click()
    stopped = wait_for_view(lab, long_view, lambda v: v["state"] == "cancelled", CANCEL_MS, "the long job to read cancelled")
    lab.screenshot("05-long-job-cancelled", long_view)

    assert "Stopped" in stopped["text"], stopped
    assert stopped["stopDisabled"] is True, stopped
    step = int(stopped["status"].split("step ", 1)[1].split("/", 1)[0].replace(",", ""))
    assert step < 2000, f"the long job ran to the end instead of stopping: {stopped['status']}"
    assert read_view(live)["state"] == "succeeded", "stopping the second job changed the first one's view"

    assert not page_record.refused, f"the page asked for hosts other than loopback: {page_record.refused}"
    assert digest(QUICKSTART) == committed, "the browser run wrote to the repository's notebook instead of its copy"
