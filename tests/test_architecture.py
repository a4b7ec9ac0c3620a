"""The rooms of docs/ARCHITECTURE.md, enforced: which package may import which, and no import circles.

Read from the source (ast), so a lazy import inside a function counts for the rooms but not for the circles
(deferring an import is how a module may reach a room above it at run time: the demo's simulator).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

#: room → the rooms its modules may import (besides the standard library and third-party packages).
ALLOWED = {
    "itsm_core": {"itsm_core"},
    "connectors": {"connectors", "itsm_core"},
    "flows": {"flows", "connectors", "itsm_core"},
    "simulators": {"simulators"},
    "bench": {"bench", "flows", "connectors", "itsm_core", "simulators", "tests"},  # tests: the real Dovecot
}
#: The only product modules that may start a simulator: the demo's (`itsm demo`, `itsm serve --demo`).
DEMO_MODULES = {"flows.demo", "flows.serve"}
ROOMS = set(ALLOWED) | {"tests", "mappings"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import of our rooms in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body} | {
        id(child)
        for node in tree.body
        if isinstance(node, ast.If)
        for child in node.body  # TYPE_CHECKING
    }
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        found += [(name, id(node) in top_level) for name in names if name.split(".")[0] in ROOMS]
    return found


def product_files() -> list[Path]:
    return sorted(p for room in ALLOWED for p in (REPO / room).rglob("*.py") if ".venv" not in p.parts)


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_the_rooms_below_it(room: str) -> None:
    wrong = []
    for path in sorted((REPO / room).rglob("*.py")):
        module = module_name(path)
        for name, _ in imports(path):
            target = name.split(".")[0]
            if target == "simulators" and room == "flows" and module in DEMO_MODULES:
                continue
            if target not in ALLOWED[room]:
                wrong.append(f"{module} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_simulator_or_generated_data_lives_among_the_connectors() -> None:
    names = [p.relative_to(REPO) for p in (REPO / "connectors").rglob("*.py") if p.stem.startswith(("sim", "fake"))]
    assert not names


def test_no_import_circle_among_the_product_modules() -> None:
    graph = {module_name(path): {n for n, top in imports(path) if top} for path in product_files()}
    modules = set(graph)
    # `from pkg import name` may name a submodule or an attribute: an edge to the closest module we have.
    edges = {m: {_closest(n, modules) for n in targets} - {None, m} for m, targets in graph.items()}
    circles = [sorted(c) for c in _strongly_connected(edges) if len(c) > 1]
    assert not circles, f"import circles: {circles}"


def _closest(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def test_the_docs_name_no_path_outside_the_repository() -> None:
    for doc in (REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))):
        text = doc.read_text(encoding="utf-8")
        assert "../" not in text, f"{doc.name} sends readers outside the repository"


def test_every_path_the_architecture_names_exists() -> None:
    """`itsm_core/sync/batch.py`, `connectors/csv/`, ...: a renamed module must take its page along."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:itsm_core|connectors|flows|simulators|mappings|tests|bench|docs)/[\w/.<>-]*)`", text))
    missing = [path for path in sorted(named) if "<" not in path and not (REPO / path).exists()]
    assert named and not missing, f"docs/ARCHITECTURE.md names what does not exist: {missing}"
