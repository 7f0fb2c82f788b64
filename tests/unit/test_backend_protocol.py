"""Every built-in backend answers the whole ``Backend`` protocol.

The registry imports backends by name on first use, so a type checker never sees a backend that lacks a
method the planner or controller calls (a serverless backend once lacked ``price`` and failed only at plan time).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from unsloth_nb.backends.base import Backend
from unsloth_nb.backends.registry import get_backend
from unsloth_nb.placements import BUILTIN_BACKENDS, MOUNTS_NETWORK_VOLUME

PROTOCOL_METHODS = sorted(
    name for name, member in vars(Backend).items() if not name.startswith("_") and inspect.isfunction(member)
)
PROTOCOL_FIELDS = sorted(name for name in Backend.__annotations__ if not name.startswith("_"))


@pytest.mark.parametrize("name", sorted(BUILTIN_BACKENDS))
def test_a_built_in_backend_has_every_method_and_field_of_the_protocol(name: str) -> None:
    backend = get_backend(name)
    missing = [m for m in PROTOCOL_METHODS if not callable(getattr(backend, m, None))]
    missing += [f for f in PROTOCOL_FIELDS if not hasattr(backend, f)]
    assert not missing, f"backend {name!r} lacks {', '.join(missing)}"
    for method in PROTOCOL_METHODS:
        wanted = inspect.signature(getattr(Backend, method))
        got = inspect.signature(getattr(backend, method))
        assert len(got.parameters) == len(wanted.parameters) - 1, f"{name}.{method}{got} differs from {wanted}"


def test_the_protocol_is_read_whole() -> None:
    assert {"price", "run", "reattach", "place", "secrets"} <= set(PROTOCOL_METHODS)


def _placement_comparisons(path: Path) -> list[str]:
    """``placement == "runpod"``, ``record.get("placement") != "local"``, ``placement in ("local", ...)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        names = {
            leaf.value
            for side in (node.left, *node.comparators)
            for leaf in ast.walk(side)
            if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str)
        }
        if names & set(BUILTIN_BACKENDS) and "placement" in ast.unparse(node):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_code_outside_backends_compares_placement_names() -> None:
    """What a placement can do is asked of its backend (or the placements table), so a new one is one folder + one line."""
    package = Path(__file__).resolve().parents[2] / "unsloth_nb"
    found = [
        hit
        for path in sorted(package.rglob("*.py"))
        if "backends" not in path.relative_to(package).parts
        for hit in _placement_comparisons(path)
    ]
    assert not found, "placement names compared outside backends/:\n" + "\n".join(found)


def test_the_placements_that_mount_a_network_volume_are_backends() -> None:
    assert set(BUILTIN_BACKENDS) >= MOUNTS_NETWORK_VOLUME
