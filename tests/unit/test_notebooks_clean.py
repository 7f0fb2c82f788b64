"""Committed notebooks carry no outputs, execution counts or widget state.

Outputs of a training run hold local paths and job ids, and saved widget state
can hold megabytes of JavaScript: none of it belongs in the repository. CI
executes the notebooks instead (tests/notebooks).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_tutorials_exist() -> None:
    assert [path.name for path in NOTEBOOKS][:2] == ["01_quickstart.ipynb", "02_training_panel.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_clean(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)

    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs or execution counts; clear them before committing"
    assert "widgets" not in notebook.metadata, f"{path.name} holds saved widget state"
