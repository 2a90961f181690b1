"""The API keeps the promise of its docstring: model first, then what, then where; no public
function with more than 8 parameters; every name the README and the docs use exists."""
import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import neuronscope as ns

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_PARAMETERS = 8


def _modules():
    for info in pkgutil.walk_packages(ns.__path__, "neuronscope."):
        if ".scale" in info.name or info.name.endswith("__main__"):  # Ray is an optional extra; __main__ runs the CLI
            continue
        yield importlib.import_module(info.name)


def _public_callables():
    """Every public function and class defined in the package (methods of public classes too)."""
    seen = set()
    for module in _modules():
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__ or id(value) in seen:
                continue
            seen.add(id(value))
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value):
                if "__init__" in vars(value) and not hasattr(value, "__dataclass_fields__"):
                    yield f"{module.__name__}.{name}", value.__init__
                for method, member in vars(value).items():
                    if inspect.isfunction(member) and not method.startswith("_"):
                        yield f"{module.__name__}.{name}.{method}", member


def test_no_public_function_takes_more_than_eight_parameters():
    long = []
    for name, function in _public_callables():
        parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        if len(parameters) > MAX_PARAMETERS:
            long.append(f"{name} ({len(parameters)})")
    assert long == [], "use a config dataclass: " + ", ".join(long)


def test_the_model_comes_first():
    wrong = []
    for name, function in _public_callables():
        parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        signature = inspect.signature(function).parameters
        models = [p for p in parameters if p in ("model", "models", "model_a")
                  and signature[p].default is inspect.Parameter.empty]  # an optional model (loaded from a manifest) may follow
        if models and parameters[0] != models[0]:
            wrong.append(f"{name}({', '.join(parameters)})")
    assert wrong == [], "model first, then what, then where: " + "; ".join(wrong)


def _code_blocks(path: Path) -> list[str]:
    return re.findall(r"```(?:python|py)\n(.*?)```", path.read_text(), flags=re.S)


def test_every_ns_name_in_the_readme_and_docs_exists():
    missing = []
    for path in DOCS:
        text = path.read_text()
        for name in sorted(set(re.findall(r"\bns\.([A-Za-z_][A-Za-z0-9_]*)", text))):
            if not hasattr(ns, name):
                missing.append(f"{path.name}: ns.{name}")
    assert missing == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_import_in_the_readme_and_docs_works(path):
    for block in _code_blocks(path):
        for node in ast.walk(ast.parse(_only_statements(block))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("neuronscope"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), \
                        f"{path.name}: from {node.module} import {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("neuronscope"):
                        importlib.import_module(alias.name)


def _only_statements(block: str) -> str:
    """The import lines of a code block (the rest may be illustrative, not runnable)."""
    lines, keep, open_paren = block.splitlines(), [], False
    for line in lines:
        if line.startswith(("from neuronscope", "import neuronscope")) or open_paren:
            keep.append(line)
            open_paren = line.rstrip().endswith("(") or (open_paren and not line.rstrip().endswith(")"))
    return "\n".join(keep)


def test_everything_in_all_exists():
    assert [name for name in ns.__all__ if not hasattr(ns, name)] == []
