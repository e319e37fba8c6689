"""core/ imports only downward (`core.LAYERS`) and never in a circle; each import that breaks it is named."""

import ast
from pathlib import Path

from tests.conftest import REPO


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, list[tuple[str, int]]]:
    """Each module under `root` (a `core/` folder) and the modules of `root` it imports, with the line:
    every import statement, at the top or inside a function."""
    modules = {_module_name(root, path): path for path in root.rglob("*.py")}
    graph: dict[str, list[tuple[str, int]]] = {}
    for name, path in modules.items():
        edges = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from core.results import charts` imports the module core.results.charts
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t if t in modules else node.module for t in targets]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != root.name:
                    edges.append((target, node.lineno))
        graph[name] = edges
    return graph


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] != "__main__") else None


def layer_problems(root: Path, layers: tuple[str, ...]) -> list[str]:
    """Every import from a later layer, every package missing from `layers`, and every circle of imports."""
    graph = import_graph(root)
    problems = []
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    problems += [f"core/{name} is not in core.LAYERS" for name in sorted(packages - set(layers))]
    problems += [f"core.LAYERS names {name}, which is not a package" for name in layers if name not in packages]
    order = {name: index for index, name in enumerate(layers)}
    for module, edges in sorted(graph.items()):
        for target, line in edges:
            mine, theirs = _layer(module), _layer(target)
            if mine in order and theirs in order and order[theirs] > order[mine]:
                problems.append(
                    f"{module} (line {line}) imports {target}: layer '{theirs}' comes after '{mine}' in core.LAYERS"
                )
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """One circle of imports per strongly connected group of modules (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter([t for t, _ in graph[start]]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter([t for t, _ in graph.get(child, [])])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_circle(graph, set(group)) for group in groups]


def _circle(graph: dict[str, list[tuple[str, int]]], group: set[str]) -> list[str]:
    """A path through `group` that comes back to where it started."""
    path = [min(group)]
    while True:
        following = sorted(t for t, _ in graph[path[-1]] if t in group)
        step = next((t for t in following if t == path[0]), None) or next(t for t in following if t not in path[1:])
        path.append(step)
        if step in path[:-1]:
            return path[path.index(step) :]


def test_core_imports_only_downward_and_never_in_a_circle():
    from core import LAYERS

    assert layer_problems(REPO / "core", LAYERS) == []


def test_a_planted_cycle_and_an_upward_import_are_named(tmp_path):
    """The check fails where it should: a circle of two modules, and the base importing a later layer."""
    core = tmp_path / "core"
    for package, files in {
        "base": {"a.py": "from core.base import b\n", "b.py": "def f():\n    from core.base.a import x\n"},
        "data": {"c.py": "X = 1\n"},
        "extra": {"d.py": ""},
    }.items():
        (core / package).mkdir(parents=True)
        (core / package / "__init__.py").write_text("")
        for name, text in files.items():
            (core / package / name).write_text(text)
    (core / "__init__.py").write_text("")
    (core / "base" / "b.py").write_text("def f():\n    from core.base.a import x\n    from core.data.c import X\n")

    problems = layer_problems(core, ("base", "data"))

    assert "core/extra is not in core.LAYERS" in problems
    assert "core.base.b (line 3) imports core.data.c: layer 'data' comes after 'base' in core.LAYERS" in problems
    assert any(p.startswith("import cycle: ") and "core.base.a" in p and "core.base.b" in p for p in problems)
    assert len(problems) == 3, problems


def test_no_core_module_imports_streamlit():
    graph_roots = [path for path in (REPO / "core").rglob("*.py")]
    for path in graph_roots:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(name.split(".")[0] == "streamlit" for name in names), path
