"""The import graph (function-level and TYPE_CHECKING imports included): no circles, and the layers' contracts."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_PACKAGE = "cxr_model_build"
# What the layers must never import: the build package, the build's tools, and torch outside the optional engine.
BUILD_ONLY_EXTERNALS = frozenset({"torch", "torchvision", "torchxrayvision", "onnx", "onnxscript", "requests"})
# the optional torch engine: the engine itself and its GPU pipeline (torch_device, torch_resize), imported only
# when MODEL_ENGINE names a torch engine
OPTIONAL_TORCH_ENGINE = "cxr_model.engines.torch_"
TORCH_ENGINE_MAY_IMPORT = frozenset({"torch", "torchxrayvision"})


def layer_packages() -> set[str]:
    """Every package a Lambda layer ships: the folders under layers/*/python."""
    return {path.parent.name for path in REPO.glob("layers/*/python/*/__init__.py")}


def project_packages() -> set[str]:
    """pyproject's packages, plus every top-level folder of the repository that is a package (functions, ...)."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    top_level = {path.parent.name for path in REPO.glob("*/__init__.py")} - {"tests"}
    return {name for name in declared if "." not in name} | top_level | layer_packages()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    first, *rest = sorted(project_packages())
    return grimp.build_graph(first, *rest, include_external_packages=True, cache_dir=None)


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Tarjan's components of more than one module (or a module that imports itself) among `modules`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def edges(module: str) -> list[str]:
        return sorted(graph.find_modules_directly_imported_by(module) & modules)

    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(edges(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges(successor))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[module] = min(low[module], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1 or module in edges(module):
                    circles.append(sorted(component))
    return circles


def test_the_graph_sees_every_project_package(graph):
    packages = project_packages()
    assert {"cxr_core", "cxr_model", BUILD_PACKAGE, "cxr_local", "cxr_cli", "functions"} <= packages
    for package in packages:
        assert graph.find_children(package), f"{package}: no modules found (not importable?)"


def test_the_cycle_finder_finds_a_circle(graph):
    """The check below cannot pass vacuously: a circle added to a copy of the graph is found."""
    circled = copy.deepcopy(graph)
    circled.add_import(importer="cxr_model.specs", imported="cxr_model.predictor")
    modules = {module for module in circled.modules if module.split(".")[0] == "cxr_model"}
    assert any({"cxr_model.specs", "cxr_model.predictor"} <= set(c) for c in strongly_connected(circled, modules))


@pytest.mark.parametrize("package", sorted(project_packages()))
def test_no_import_circles(graph, package):
    modules = {module for module in graph.modules if module.split(".")[0] == package}
    assert strongly_connected(graph, modules) == []


def test_nothing_in_a_layer_imports_build_tools_or_unshipped_packages(graph):
    shipped = layer_packages()
    unshipped = project_packages() - shipped
    assert BUILD_PACKAGE in unshipped
    offences = []
    for module in sorted(m for m in graph.modules if m.split(".")[0] in shipped):
        allowed = TORCH_ENGINE_MAY_IMPORT if module.startswith(OPTIONAL_TORCH_ENGINE) else frozenset()
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top in unshipped or (top in BUILD_ONLY_EXTERNALS and top not in allowed):
                offences.append(f"{module} imports {imported}")
    assert offences == []


def test_the_domain_does_not_reach_the_local_stack_or_the_cli(graph):
    for forbidden in ("cxr_local", "cxr_cli"):
        assert not graph.chain_exists(importer="cxr_core", imported=forbidden, as_packages=True), forbidden
