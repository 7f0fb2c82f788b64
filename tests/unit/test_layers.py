"""The import graph of ``unsloth_nb`` points one way: down the layers the README's Layout describes.

Every ``from unsloth_nb... import`` is read from the source (top-level, inside functions and
lazy ones alike; only ``if TYPE_CHECKING:`` blocks are left out, they never run), each module is
put in its layer, and an import from a lower layer up to a higher one fails the test, as does
any cycle between modules. Why a test: an upward import is one line, and a lazy one hides from
everything but a walk like this.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import unsloth_nb

PACKAGE = Path(unsloth_nb.__file__).parent

#: Lowest first. A module belongs to the first layer with a pattern that matches its dotted name.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "foundation: vocabulary, errors, config, secrets",
        [
            "unsloth_nb.__version__",  # `from unsloth_nb import __version__`: the root package is loaded first anyway
            "unsloth_nb.errors",
            "unsloth_nb.config_aliases",
            "unsloth_nb.config",
            "unsloth_nb.config.*",
            "unsloth_nb.credentials",
            "unsloth_nb.latest_only",
            "unsloth_nb.placements",
            "unsloth_nb.models",
            "unsloth_nb.jobrun.lifecycle",
            "unsloth_nb.jobrun.checkpoints",
            "unsloth_nb.llm.types",
            "unsloth_nb.llm.prices",  # the judge section checks its price overrides
        ],
    ),
    (
        "records and inputs: events, job folders, data, LLM clients, the Hub, sizing rules",
        [
            "unsloth_nb.jobrun.events",
            "unsloth_nb.jobrun.store",
            "unsloth_nb.jobrun.runtime",
            "unsloth_nb.data",
            "unsloth_nb.data.*",
            "unsloth_nb.llm",
            "unsloth_nb.llm.*",
            "unsloth_nb.hub",
            "unsloth_nb.planning",
            "unsloth_nb.planning.gpu_catalog",
            "unsloth_nb.planning.hardware",
            "unsloth_nb.planning.memory",
            "unsloth_nb.planning.model_size",
            "unsloth_nb.planning.pod_size",
            "unsloth_nb.planning.spot",
            "unsloth_nb.planning.durations",
            "unsloth_nb.worker.protocol",  # wire constants and the dataset packing both ends share
            # loopback LLM APIs: the offline judge (`unsloth-nb demo --judge` without a key) talks to one
            "unsloth_nb.testing.loopback_http",
            "unsloth_nb.testing.fake_llm",
            "unsloth_nb.testing.fake_openai",
            "unsloth_nb.testing.fake_teacher",  # the offline scripted teacher (tutorials and --fake without a key)
        ],
    ),
    (
        "phases: the engine, evaluation, the phases and the on-pod worker that runs them",
        [
            "unsloth_nb.engine",
            "unsloth_nb.engine.*",
            "unsloth_nb.phases",
            "unsloth_nb.phases.*",
            "unsloth_nb.evaluate",
            "unsloth_nb.evaluate.*",
            "unsloth_nb.teacher",
            "unsloth_nb.teacher.*",
            "unsloth_nb.export",
            "unsloth_nb.export.*",
            "unsloth_nb.worker",
            "unsloth_nb.worker.*",
        ],
    ),
    ("backends: where phases run", ["unsloth_nb.backends", "unsloth_nb.backends.*"]),
    ("planning: asks the backends", ["unsloth_nb.planning.*"]),
    (
        "jobs: preflight, the Job handle, the controller",
        ["unsloth_nb.jobrun", "unsloth_nb.jobrun.*"],
    ),
    (
        "entry points and the notebook layer",
        [
            "unsloth_nb",
            "unsloth_nb.api",
            "unsloth_nb.cli",
            "unsloth_nb.demo",
            "unsloth_nb.flags",
            "unsloth_nb.ui",
            "unsloth_nb.ui.*",
            "unsloth_nb.backends.runpod.cli",  # `unsloth-nb runpod ...`
            "unsloth_nb.backends.runpod.collect",  # `runpod cleanup` takes finished jobs over (load_job)
            "unsloth_nb.backends.runpod.volume_cli",  # `unsloth-nb runpod volume ...`
            "unsloth_nb.teacher.cli",  # `unsloth-nb enhance ...`
            "unsloth_nb.data.cli",  # `unsloth-nb data describe|upload|enhance`
            "unsloth_nb.backends.runpod_serverless.serve_cli",  # `unsloth-nb serve ...`
            "unsloth_nb.importer",  # `unsloth-nb import`, `--from`: notebooks -> configs, checked by planning them
            "unsloth_nb.importer.*",
            "unsloth_nb.testing",
            "unsloth_nb.testing.*",
        ],
    ),
]

#: Entry-point modules that sit inside a lower package (they must win over that package's pattern).
ENTRY_OVERRIDES = {
    "unsloth_nb.backends.runpod.cli",
    "unsloth_nb.backends.runpod.collect",
    "unsloth_nb.backends.runpod.volume_cli",
    "unsloth_nb.backends.runpod_serverless.serve_cli",
    "unsloth_nb.teacher.cli",
    "unsloth_nb.data.cli",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    if module in ENTRY_OVERRIDES:
        return len(LAYERS) - 1
    for index, (_, patterns) in enumerate(LAYERS):
        if module in patterns:  # a module named outright wins over a pattern of a lower layer
            return index
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


class _Imports(ast.NodeVisitor):
    """``unsloth_nb`` modules a file imports when it runs (TYPE_CHECKING blocks left out)."""

    def __init__(self, modules: set[str]) -> None:
        self.modules = modules
        self.found: list[tuple[str, int]] = []

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("unsloth_nb")]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not node.module or not node.module.startswith("unsloth_nb") or node.level:
            return
        for alias in node.names:  # `from unsloth_nb.x import y` where y is a module imports that module
            candidate = f"{node.module}.{alias.name}"
            if candidate in self.modules or candidate == "unsloth_nb.__version__":
                self.found.append((candidate, node.lineno))
            else:
                self.found.append((node.module, node.lineno))


def import_graph() -> dict[str, list[tuple[str, int]]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        visitor = _Imports(set(files))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[module] = [(target, line) for target, line in visitor.found if target != module]
    return graph


def test_every_module_has_a_layer() -> None:
    for module in import_graph():
        layer_of(module)


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{module}:{line} imports {target} ({LAYERS[layer_of(module)][0].split(':')[0]} -> "
        f"{LAYERS[layer_of(target)][0].split(':')[0]})"
        for module, targets in import_graph().items()
        for target, line in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports from a lower layer up to a higher one:\n" + "\n".join(sorted(upward))


def import_cycles() -> list[list[str]]:
    """Every set of modules that import each other in a circle (Tarjan's strongly connected components)."""
    graph = {module: sorted({target for target, _ in targets}) for module, targets in import_graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def strongly_connected(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, []):
            if target not in index:
                strongly_connected(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            strongly_connected(module)
    return [c for c in components if len(c) > 1]


def test_no_import_cycle() -> None:
    """No chain of imports leads from a module back to itself, inside one package or across packages.

    A lazy import counts: it only moves the circle from import time to call time, and a module that has to
    import its own caller to do its work has its job in the wrong place. (A submodule's implicit import of its
    package's ``__init__`` is Python's, not an edge here.)
    """
    cycles = import_cycles()
    assert not cycles, "modules that import each other in a circle (lazy imports included):\n" + "\n".join(
        ", ".join(c) for c in cycles
    )
