"""The package's import graph: every module-to-module import (lazy ones too, not TYPE_CHECKING
blocks), its cycles between modules and between packages, imports that go the wrong way between
layers, and module sizes. Usage: python scripts/check_imports.py [--max-lines N]

Packages: within every package, its direct children (modules and sub-packages) are nodes, and a
child imports another when any module inside it imports any module inside the other; a cycle
among them is a cycle between packages even when no two modules import each other. Layers:
the application packages (``APPLICATION``) may import the library; no other package or module
imports them (``scale`` and ``cli`` may import ``gallery``; ``gallery`` imports neither)."""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "neuronscope"


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``name`` imports (outside ``if TYPE_CHECKING:`` blocks)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
            for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in known:
                    found.add(target)
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), i.e. import cycles.

    A package's ``__init__`` re-exporting its own submodules is not counted as an arrow back up:
    edges from a submodule to an ancestor package's ``__init__`` are followed only when that
    ``__init__`` would then import something outside the submodule's own package."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


APPLICATION = {"neuronscope.gallery": set(), "neuronscope.scale": {"neuronscope.gallery"},
               "neuronscope.cli": {"neuronscope.gallery", "neuronscope.scale"}}
"""Application package -> the application packages it may import. The root ``neuronscope`` (the
public API) and ``neuronscope.__main__`` may import anything."""


def package_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Cycles among the children of every package (see the module docstring)."""
    packages = {name for name in g if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()}
    found = []
    for package in sorted(packages):
        def child(module: str) -> str | None:
            if not module.startswith(package + "."):
                return None
            return package + "." + module[len(package) + 1:].split(".")[0]

        children: dict[str, set[str]] = {}
        for module, targets in g.items():
            a = child(module)
            if a is None:
                continue
            children.setdefault(a, set())
            for target in targets:
                b = child(target)
                if b is not None and b != a:
                    children[a].add(b)
        found += cycles(children)
    return found


def layer_violations(g: dict[str, set[str]]) -> list[str]:
    """Imports of an application package from a module that may not import it."""
    def app(module: str) -> str | None:
        return next((p for p in APPLICATION if module == p or module.startswith(p + ".")), None)

    wrong = []
    for module, targets in sorted(g.items()):
        if module in ("neuronscope", "neuronscope.__main__"):
            continue
        own = app(module)
        allowed = APPLICATION.get(own, set()) | ({own} if own else set())
        for target in sorted(targets):
            theirs = app(target)
            if theirs is not None and theirs not in allowed:
                wrong.append(f"{module} imports {target}")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-lines", type=int, default=400)
    args = parser.parse_args()
    g = graph()
    found = cycles(g)
    for component in found:
        print("cycle:", " <-> ".join(component))
    between = package_cycles(g)
    for component in between:
        print("package cycle:", " <-> ".join(component))
    wrong = layer_violations(g)
    for line in wrong:
        print("upward import:", line)
    long = [(len(p.read_text().splitlines()), n) for n, p in modules().items()
            if len(p.read_text().splitlines()) > args.max_lines]
    for lines, name in sorted(long, reverse=True):
        print(f"long: {name} has {lines} lines (> {args.max_lines})")
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports, {len(found)} module cycles, "
          f"{len(between)} package cycles, {len(wrong)} upward imports, {len(long)} modules over {args.max_lines} lines")
    return 1 if found or between or wrong or long else 0


if __name__ == "__main__":
    sys.exit(main())
