"""Import an Unsloth notebook or script: ``unsloth-nb import NOTEBOOK``, ``%unsloth_train --from FILE``, or pasted cells.

The cells are parsed, never run (:mod:`.scan`); the calls that matter become our config fields (:mod:`.mapping`),
and every knob that could not be mapped is reported with its cell and line. Exports (GGUF, Ollama, merged models,
``hub.push``) are live fields; the ones the notebook only offers under ``if False:`` are listed, not turned on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unsloth_nb.importer.cells import Cell, cells_of_text, read_cells
from unsloth_nb.importer.mapping import Mapped, Note, map_scan
from unsloth_nb.importer.scan import scan_cells

#: Calls whose presence makes pasted text an Unsloth notebook rather than a YAML body gone wrong.
NOTEBOOK_CALLS = ("from_pretrained", "get_peft_model", "SFTTrainer", "SFTConfig", "TrainingArguments")


@dataclass
class ImportResult:
    """The config an Unsloth notebook describes, and what could not be carried over."""

    source: str
    config: dict[str, Any]
    unmapped: list[Note] = field(default_factory=list)
    handled: list[Note] = field(default_factory=list)
    offered: list[Note] = field(default_factory=list)

    def to_yaml(self) -> str:
        """A config file: the fields, then the notes (not mapped, offered under `if False:`, handled) as comments."""
        lines = [f"# Imported from {self.source} by unsloth-nb (its cells were read, never run)."]
        if "dataset" not in self.config:
            lines.append("# No dataset this version can read was found: give one with --dataset FILE (or a dataset: line).")
        lines.append(_dump(self.config))
        for title, notes in (
            ("Not mapped (edit the config if they matter)", self.unmapped),
            ("Offered by the notebook but not run (inside `if False:`)", self.offered),
            ("Handled by unsloth-nb itself", self.handled),
        ):
            if notes:
                lines += ["", f"# {title}:"] + [f"#   {note}" for note in notes]
        return "\n".join(lines) + "\n"

    def report(self) -> str:
        """What to tell the user after an import: the knobs not mapped and the options offered but not run."""
        lines = [f"Imported {self.source}."]
        if self.unmapped:
            lines.append(f"{len(self.unmapped)} knob{'s' if len(self.unmapped) != 1 else ''} not mapped:")
            lines += [f"  {note}" for note in self.unmapped]
        if self.offered:
            lines.append(f"{len(self.offered)} save/export option(s) the notebook offers but does not run (see the YAML).")
        return "\n".join(lines)


def import_file(path: str | Path) -> ImportResult:
    """The config of an Unsloth notebook (.ipynb) or script (.py)."""
    return _result(Path(path).name, read_cells(path))


def import_code(text: str, source: str = "the pasted cells") -> ImportResult:
    """The config of notebook cells pasted as one block of Python."""
    return _result(source, cells_of_text(text))


def looks_like_notebook_code(text: str) -> bool:
    """Whether pasted text is Python calling Unsloth/TRL (so a cell body that is not YAML should be imported)."""
    import ast

    from unsloth_nb.importer.cells import python_source

    try:
        tree = ast.parse(python_source(text))
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in NOTEBOOK_CALLS:
                return True
    return False


def _result(source: str, cells: list[Cell]) -> ImportResult:
    mapped: Mapped = map_scan(scan_cells(cells))
    return ImportResult(source, mapped.config, mapped.unmapped, mapped.handled, mapped.offered)


def _dump(data: dict[str, Any]) -> str:
    """YAML in our schema's order (sections, then fields as declared), lists on one line."""
    import yaml

    from unsloth_nb.config import field_specs

    order = {spec.path: index for index, spec in enumerate(field_specs())}
    sections = list(dict.fromkeys(path.split(".")[0] for path in order))

    def ordered(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        def rank(key: str) -> int:
            path = f"{prefix}{key}"
            if path in order:
                return order[path]
            firsts = [index for p, index in order.items() if p.startswith(path + ".")]
            return min(firsts) if firsts else len(order)

        keys = sorted(node, key=rank) if prefix else sorted(node, key=lambda k: sections.index(k) if k in sections else 99)
        return {k: ordered(node[k], f"{prefix}{k}.") if isinstance(node[k], dict) and k != "columns" else node[k] for k in keys}

    class _Dumper(yaml.SafeDumper):
        pass

    def flow_list(dumper: yaml.SafeDumper, value: list[Any]) -> Any:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=all(not isinstance(v, dict) for v in value))

    _Dumper.add_representer(list, flow_list)
    return yaml.dump(ordered(data, ""), Dumper=_Dumper, sort_keys=False, width=120).rstrip()


__all__ = ["ImportResult", "Note", "import_code", "import_file", "looks_like_notebook_code"]
