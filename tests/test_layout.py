"""The package's shape: imports point one way (no cycle) and modules stay small."""
import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_imports.py"
spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
check_imports = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_imports)

MAX_LINES = 400


def test_the_import_graph_has_no_cycle():
    graph = check_imports.graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # it really read the package
    assert check_imports.cycles(graph) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import x\n")
    (package / "b.py").write_text("def f():\n    from .a import y\n")  # a lazy import counts too
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n")
    known = check_imports.modules(package)
    graph = {name: check_imports.imports(name, path, known) for name, path in known.items()}
    assert check_imports.cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_module_is_over_400_lines():
    long = {name: len(path.read_text().splitlines()) for name, path in check_imports.modules().items()
            if len(path.read_text().splitlines()) > MAX_LINES}
    assert long == {}


def test_one_place_in_the_package_constructs_an_optimizer():
    package = SCRIPT.parents[1] / "src" / "neuronscope"
    made = re.compile(r"torch\.optim\.[A-Z]\w*\(|optim\.[A-Z]\w*\(")
    places = [str(p.relative_to(package)) for p in package.rglob("*.py")
              for line in p.read_text().splitlines() if made.search(line)]
    assert sorted(set(places)) == ["featurevis/loop.py"]  # the optimizers a config can name live there
