"""The code cells of an Unsloth notebook (``.ipynb``) or script (``.py``), as Python that ``ast`` can parse.

Nothing here runs the code. IPython-only lines (``!pip install``, ``%%capture``, ``%env``) are blanked, keeping
line numbers, so every note can name the cell and line the user sees.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from unsloth_nb.errors import ConfigError


@dataclass(frozen=True)
class Cell:
    """One code cell: its 1-based position among all the notebook's cells (None for a script) and its source."""

    number: int | None
    source: str

    def where(self, line: int) -> str:
        return f"cell {self.number}, line {line}" if self.number is not None else f"line {line}"


_IPYTHON_LINE = re.compile(r"^(\s*)[!%]")


def python_source(source: str) -> str:
    """``source`` with IPython's shell and magic lines blanked (``pass`` at their indentation), same line count."""
    lines = []
    continued = False  # a shell line ending in a backslash goes on in the next line
    for line in source.split("\n"):
        match = _IPYTHON_LINE.match(line)
        if continued:
            lines.append("")
        elif match:
            lines.append(f"{match.group(1)}pass")
        else:
            lines.append(line)
        continued = (continued or match is not None) and line.rstrip().endswith("\\")
    return "\n".join(lines)


def read_cells(path: str | Path) -> list[Cell]:
    """The code cells of a notebook, or a script as one cell; a file that is neither is refused with the reason."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("import", f"{p}: no such file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".py":
        return [Cell(None, text)]
    if p.suffix.lower() != ".ipynb":
        raise ConfigError("import", f"{p}: expected a notebook (.ipynb) or a Python script (.py)")
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("import", f"{p}:{exc.lineno}: not a notebook (invalid JSON: {exc.msg})") from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise ConfigError("import", f"{p}: not a notebook (no cells)")
    found = []
    for index, cell in enumerate(cells):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            found.append(Cell(index + 1, "".join(source) if isinstance(source, list) else str(source)))
    return found


def cells_of_text(text: str) -> list[Cell]:
    """Pasted code (several notebook cells one after another) as one cell: lines count from its first line."""
    return [Cell(None, text)]
