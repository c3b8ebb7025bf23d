"""The package's import graph: no cycle anywhere, cheap imports at module level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "losslab"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """``(module imported, names taken from it)`` for every import statement that can run,
    module-level or inside functions (a cycle held together by function-level imports is still
    a cycle); ``if TYPE_CHECKING:`` blocks never run and are skipped."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> modules of the package it imports. ``from losslab.x import y`` is an edge to
    ``losslab.x.y`` when that is a module, else to ``losslab.x``; importing a submodule is not an
    edge to its parent package's ``__init__``."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for target, names in _imports(tree, name, path.name == "__init__.py"):
            if target != "losslab" and not target.startswith("losslab."):
                continue
            if not names:
                edges = {target}
            else:
                edges = {f"{target}.{n}" if f"{target}.{n}" in modules else target
                         for n in names}
            graph[name] |= {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(graph):
        if state.get(root):
            continue
        path = [root]
        stack = [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert "losslab.train.trainer" in graph and graph["losslab.train.trainer"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles_and_the_edge_rules():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    tree = ast.parse(
        "import losslab.train.layers\n"
        "from losslab.train import trainer, NonFiniteError\n"
        "from . import history\n"
        "def f():\n    from losslab.train.checkpoint import save_model\n"
        "if TYPE_CHECKING:\n    from losslab.cli import build\n"
    )
    found = _imports(tree, "losslab.train.callbacks", False)
    assert found == [
        ("losslab.train.layers", []),
        ("losslab.train", ["trainer", "NonFiniteError"]),
        ("losslab.train", ["history"]),
        ("losslab.train.checkpoint", ["save_model"]),
    ]


# Imported lazily, inside the functions that need them: heavy or optional.
HEAVY = ("torch", "jax", "matplotlib", "tqdm", "sklearn", "scipy", "xgboost", "lightgbm")


def test_engine_imports_cheap_modules_at_module_level():
    """Inside ``losslab.train``, every function-level import is of a heavy or optional module."""
    lazy = []
    for name, path in _modules().items():
        if not name.startswith("losslab.train") and name not in (
            "losslab.special", "losslab.atomic"
        ):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                            else [node.module or ""])
                    lazy += [f"{name}: {m}" for m in mods if m.split(".")[0] not in HEAVY]
    assert not lazy, "cheap imports inside functions: " + ", ".join(lazy)


def test_importing_the_engine_stays_light():
    code = (
        "import sys, losslab.train, losslab.train.data, losslab.train.experiments; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import losslab.train pulled in: {out.stdout.strip()}"


# The layers, bottom first: each may import only its own and the ones below it.
LAYERS = [
    ("catalog", ("losslab.losses", "losslab.atomic", "losslab.special")),
    ("engine", ("losslab.train", "losslab.gradcheck")),
    ("adapters", ("losslab.torch", "losslab.jax", "losslab._vjp", "losslab.boosting",
                  "losslab._torch_linear", "losslab._jax_linear", "losslab._torch_graph")),
    ("command line", ("losslab.cli", "losslab.__main__")),
]


def _layer(module: str) -> int | None:
    for level, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None  # the package's __init__ (it re-exports the catalog)


def test_each_layer_imports_only_itself_and_the_layers_below():
    upward = []
    for module, targets in import_graph().items():
        here = _layer(module)
        if here is None:
            continue
        for target in targets:
            there = _layer(target)
            if there is not None and there > here:
                upward.append(f"{module} ({LAYERS[here][0]}) imports {target} "
                              f"({LAYERS[there][0]})")
    assert not upward, upward
