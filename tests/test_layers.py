"""The package's shape, checked: imports run one way (commands -> pipelines -> validators
-> converters -> loading -> core), no module imports itself back, ``core`` needs no
framework, and nothing outside ``converters/`` spells a format's suffix."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import modelport
from modelport import converters

PACKAGE = Path(modelport.__file__).parent
# lower number = lower layer; a module may import its own layer or lower ones
LAYERS = {"core": 0, "loading": 1, "converters": 2, "validators": 3, "pipeline": 4,
          "commands": 5, "top": 6}
PIPELINES = {"conversion", "inspection", "view", "corpus", "batch", "bench"}
FRAMEWORKS = {"tensorflow", "keras", "tf_keras", "tf2onnx", "onnx", "onnxruntime",
              "ai_edge_litert", "h5py", "netron"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__", "cli", "fixtures"):
        return "top"  # the package's public API, the CLI entry, the fixture builders
    if parts[1] in PIPELINES:
        return "pipeline"
    return parts[1]


def _imports(tree: ast.AST, module: str, known: set[str] | None = None) -> list[str]:
    """Every module imported anywhere in ``tree`` (functions included), except under
    ``if TYPE_CHECKING:`` (annotations only). ``from pkg import sub`` counts as importing
    ``pkg.sub`` only, when ``sub`` is one of the ``known`` modules."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            if known is None or not all(s in known for s in subs):
                found.append(base)
            found.extend(subs)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {d for d in _imports(ast.parse(path.read_text()), name, set(modules))
                if d in modules}
        graph[name] = deps - {name}
    return graph


GRAPH = _graph()


def test_imports_run_one_way():
    wrong = []
    for module, deps in GRAPH.items():
        for dep in deps:
            if dep == "modelport":
                continue  # the package itself (its __init__ only defines lazy API wrappers)
            if LAYERS[_layer(dep)] > LAYERS[_layer(module)] or (
                    _layer(dep) == "top" and _layer(module) != "top"):
                wrong.append(f"{module} ({_layer(module)}) imports {dep} ({_layer(dep)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    # Tarjan's strongly connected components over every import, function-level included
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v] - {"modelport"}:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            connect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_core_imports_no_framework():
    offenders = []
    for path in (PACKAGE / "core").rglob("*.py"):
        for dep in _imports(ast.parse(path.read_text()), _module_name(path)):
            if dep.split(".")[0] in FRAMEWORKS or dep.split(".")[0] == "numpy":
                offenders.append(f"{path.name}: {dep}")
    assert not offenders


def test_top_level_stays_small():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 10, top
    assert {"core", "loading", "converters", "validators", "commands", "fixtures"} <= {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert (PACKAGE / "loading" / "legacy").is_dir()


def _literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_only_converters_spell_format_suffixes():
    suffixes = set(converters.suffixes().values())
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "converters" in path.relative_to(PACKAGE).parts:
            continue
        for line, text in _literals(path):
            if text in suffixes or any(text.endswith(s) and " " not in text for s in suffixes):
                found.append(f"{path.relative_to(PACKAGE)}:{line} {text!r}")
    assert not found


@pytest.mark.parametrize("module", converters.modules(), ids=lambda m: m.NAME)
def test_format_modules_fulfil_the_contract(module):
    for attr in ("NAME", "SUFFIX", "ALIASES", "VIEW_RANK", "BYTE_DETERMINISTIC", "RUNTIME"):
        assert hasattr(module, attr), f"{module.__name__} lacks {attr}"
    for fn in ("detect", "view_file", "companions", "routes", "load", "describe"):
        assert callable(getattr(module, fn, None)), f"{module.__name__} lacks {fn}()"
    assert converters.get(module.NAME) is module
    assert converters.artifact_path("o", "m", module.NAME) == Path("o") / f"m{module.SUFFIX}"
    for alias in module.ALIASES:
        assert converters.get(alias) is module


def test_unknown_format_lists_the_known_ones():
    from modelport.core.errors import UserInputError

    with pytest.raises(UserInputError, match="choose from: savedmodel, pb, tflite, onnx"):
        converters.get("caffe")


def test_layer_check_sees_a_violation():
    """The checker itself: an import against the arrows is reported."""
    tree = ast.parse("def f():\n    from modelport.validators import compare\n")
    deps = _imports(tree, "modelport.loading.source")
    assert "modelport.validators.compare" in deps
    assert LAYERS[_layer("modelport.validators.compare")] > LAYERS[_layer("modelport.loading.x")]
    typed = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from modelport.validators import compare\n")
    assert not [d for d in _imports(typed, "modelport.loading.x") if "validators" in d]
