"""minigrad.fused: the switch (call, context manager, MINIGRAD_FUSED=0), the kernel table, and
reference_grads (how a fused op's backward differentiates its reference under
create_graph=True)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from kernel_utils import cpu, grad_fn_names
from kernel_utils import fused_on  # noqa: F401  (autouse: kernels on, whatever the env)

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.fused import KERNELS, fused_enabled, is_fused


def test_switch_as_call_and_as_context_manager():
    assert is_fused()
    with mg.use_fused(False):
        assert not is_fused()
        with mg.use_fused(True):
            assert is_fused()
        assert not is_fused()
    assert is_fused()
    mg.use_fused(False)
    try:
        assert not is_fused()
    finally:
        mg.use_fused(True)
    assert is_fused()


@pytest.mark.parametrize("value, expected", [("0", "False"), ("1", "True"), ("off", "False")])
def test_environment_variable(value, expected):
    code = ("import minigrad as mg, minigrad.nn.functional as F; "
            "x = mg.randn(4, 3, requires_grad=True); "
            "print(mg.fused.is_fused(), type(F.layer_norm(x, (3,)).grad_fn).__name__)")
    env = dict(os.environ, MINIGRAD_FUSED=value)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    flag, fn_name = out.stdout.split()
    assert flag == expected
    assert (fn_name == "LayerNormFn") == (expected == "True")


def test_kernel_table(device):
    for name, table in KERNELS.items():
        assert set(table) == {"cpu", "cuda"}, name
        x = mg.ones(2, 2, device=device)
        assert fused_enabled(name, x)
        assert fused_enabled(name, x, None)
        assert not fused_enabled(name, x.to(mg.float16))
        assert not fused_enabled(name, x, x.to(mg.float16))
        with mg.use_fused(False):
            assert not fused_enabled(name, x)


def test_reference_grads_stays_at_the_op(device):
    """create_graph through a fused op: the engine does not walk the graph below it twice, so
    hooks upstream fire once and retained gradients are not doubled; second derivatives are
    the composite's."""
    x0 = mg.tensor(np.linspace(-2, 2, 12).reshape(3, 4), dtype=mg.float64, device=device,
                   requires_grad=True)
    results = []
    for fused in (True, False):
        calls = []
        x0.grad = None
        with mg.use_fused(fused):
            x = x0 * 1.5  # a non-leaf input with a hook and a retained gradient
            x.register_hook(lambda g, calls=calls: calls.append(1))
            x.retain_grad()
            y = F.gelu(F.layer_norm(x, (4,)))
            assert ("LayerNormFn" in grad_fn_names(y)) == fused
            (g,) = mg.grad((y * y).sum(), [x0], create_graph=True)
            assert len(calls) == 1
            retained = cpu(x.grad)
            (g * g).sum().backward()
        assert len(calls) == 2  # once per backward pass, as on the composite path
        results.append((cpu(g), cpu(x0.grad), retained, cpu(x.grad)))
    for a, b in zip(*results):  # the same retained gradients: nothing was counted twice
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_import_leaves_cupy_and_kernels_unloaded():
    code = ("import sys, minigrad; assert 'cupy' not in sys.modules; "
            "from minigrad.kernels import _cuda; assert not _cuda._modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_doctests():
    """kernels/ is outside pytest's doctest paths: run its examples (and fused.py's and
    references.py's) here."""
    import doctest
    import importlib

    import minigrad.fused
    import minigrad.references

    names = ["_cuda", "_numpy", "adam", "attention", "bptt", "dropout", "gelu", "gru",
             "layer_norm", "lstm", "softmax_cross_entropy"]
    modules = [minigrad.fused, minigrad.references] + [
        importlib.import_module(f"minigrad.kernels.{n}") for n in names]
    for module in modules:
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__


@pytest.mark.parametrize("threads", ["1", "3"])
def test_chunk_threads_give_the_same_numbers(monkeypatch, threads):
    """MINIGRAD_NUM_THREADS spreads the chunks of the NumPy kernels over threads; the results
    are the same numbers as with one thread."""
    from minigrad.kernels import _numpy

    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((1400, 400)).astype(np.float32), requires_grad=True)
    t = mg.tensor(rng.integers(0, 400, 1400))  # 560K values: several chunks in every kernel
    w = mg.tensor(rng.standard_normal(400).astype(np.float32), requires_grad=True)

    def run():
        x.grad = w.grad = None
        y = F.layer_norm(F.gelu(x), (400,), w)
        loss = F.cross_entropy(y, t, label_smoothing=0.1)
        loss.backward()
        return [cpu(loss), cpu(x.grad), cpu(w.grad)]

    monkeypatch.setenv("MINIGRAD_NUM_THREADS", "1")
    one = run()
    monkeypatch.setenv("MINIGRAD_NUM_THREADS", threads)
    assert _numpy.num_threads() == int(threads)
    for a, b in zip(one, run()):
        np.testing.assert_array_equal(a, b)


def _minigrad_imports(path):
    """The minigrad modules a source file imports, at any depth of its code (so a lazy import
    inside a function counts too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("minigrad")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                node.module.startswith("minigrad"):
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_layering_of_references_and_kernels():
    """ops -> references -> fused + kernels -> nn: the composite references use only the layers
    below them, and the kernels (and the kernel base) never import nn or optim, not even
    lazily."""
    from pathlib import Path

    import minigrad.kernels

    root = Path(mg.__file__).resolve().parent
    allowed = ("minigrad.ops", "minigrad.tensor", "minigrad.autograd", "minigrad.backend",
               "minigrad.dtypes")
    for name in _minigrad_imports(root / "references.py"):
        assert name.startswith(allowed), f"references.py imports {name}"
    kernel_files = sorted(Path(minigrad.kernels.__file__).resolve().parent.glob("*.py"))
    assert len(kernel_files) > 8
    for path in kernel_files + [root / "fused.py"]:
        for name in _minigrad_imports(path):
            assert not name.startswith(("minigrad.nn", "minigrad.optim")), (path.name, name)
