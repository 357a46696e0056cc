"""The course's graded exercises (minigrad.exercises, `minigrad exercises`).

Every exercise's checks pass on minigrad's own code (wrapped to the stub's interface) and on a
student's solution written into the stub, and fail on the untouched stub ("not written yet")
and on a deliberately wrong solution, with a message that names the problem.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minigrad import exercises
from minigrad.cli import build_parser
from minigrad.exercises import _base

ROOT = Path(__file__).resolve().parents[1]
NAMES = exercises.names()

# What a student writes in the stub's NotImplementedError line (its indentation kept).
SOLUTIONS = {
    "shard_indices": """
    n = len(order)
    if drop_last and n % num_replicas:
        size = n // num_replicas
    else:
        size = -(-n // num_replicas)
    total = size * num_replicas
    order = np.asarray(order)
    if drop_last:
        order = order[:total]
    else:
        order = np.concatenate([order, np.resize(order, total - n)])
    return order[rank:total:num_replicas].tolist()
""",
    "topo_order": """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in producers(node):
            if id(p) not in seen:
                stack.append((p, False))
    return order[::-1]
""",
    "div_backward": """
        ga = gy / b if self.needs_input_grad[0] else None
        gb = -gy * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb
""",
    "sum_to": """
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        k + lead for k, s in enumerate(shape) if s == 1 and x.shape[k + lead] != 1)
    return x.sum(axis=axes, keepdims=True).reshape(shape)
""",
    "cross_entropy_backward": """
    N = p.shape[0]
    grad = p.copy()
    grad[np.arange(N), target] -= 1
    return grad / N
""",
    "layer_norm_backward": """
    dxhat = dy * weight
    dx = dxhat - dxhat.mean(axis=1, keepdims=True)
    dx = dx - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)
    return rstd * dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)
""",
    "adam_update": """
    g = grad + weight_decay * param if weight_decay else grad
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
""",
    "lstm_step_backward": """
    tc = np.tanh(c_new)
    dc = dc_new + dh_new * o * (1 - tc**2)
    di, df, dg, do = dc * g, dc * c, dc * i, dh_new * tc
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2),
                         do * o * (1 - o)], axis=1)
    return da, da @ w_hh, dc * f, da.T @ h, da.sum(axis=0)
""",
    "attention_backward": """
    dv = P.T @ dout
    dP = dout @ v.T
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))
    dq = dS @ k * scale
    dk = dS.T @ q * scale
    return dq, dk, dv
""",
    "col2im": """
    N, C, H, W = x_shape
    kh, kw = kernel_size
    Ho, Wo = cols.shape[-2:]
    padded = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (Ho - 1) + 1, stride)
            columns = slice(j, j + stride * (Wo - 1) + 1, stride)
            padded[:, :, rows, columns] += cols[:, i, j].transpose(1, 0, 2, 3)
    return padded[:, :, padding:padding + H, padding:padding + W]
""",
    "lora_forward": """
    r = lora_A.shape[0]
    out = x @ weight.T
    if bias is not None:
        out = out + bias
    return out + (x @ lora_A.T) @ lora_B.T * (alpha / r)
""",
    "kv_cache_append": """
        B, H, steps, D = key.shape
        start = self.length
        if self.keys is None or self.keys.shape[2] < start + steps:
            old = 0 if self.keys is None else self.keys.shape[2]
            capacity = max(self.capacity, start + steps, 2 * old)
            keys = np.empty((B, H, capacity, D), dtype=key.dtype)
            values = np.empty((B, H, capacity, D), dtype=value.dtype)
            if self.keys is not None:
                keys[:, :, :start] = self.keys[:, :, :start]
                values[:, :, :start] = self.values[:, :, :start]
            self.keys, self.values = keys, values
        self.keys[:, :, start:start + steps] = key
        self.values[:, :, start:start + steps] = value
        self.length = start + steps
        return self.keys[:, :, :self.length], self.values[:, :, :self.length]
""",
}

# A classic mistake per exercise: (text in the solution, its replacement, words the failure
# message must contain).
MISTAKES = {
    "shard_indices": ("np.resize(order, total - n)", "order[:total - n]",
                      "every rank must get as many"),
    "topo_order": ("return order[::-1]", "return order", "should come first"),
    "div_backward": ("gb = -gy * a", "gb = gy * a", "the gradient of b (input 1) is wrong"),
    "sum_to": ("k + lead for k, s in enumerate(shape) if s == 1 and x.shape[k + lead] != 1",
               "k for k in ()", "cannot reshape array of size 12 into shape (3,1)"),
    "cross_entropy_backward": ("return grad / N", "return grad", "off by a constant factor"),
    "layer_norm_backward": ("dx = dx - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)",
                            "dx = dx", "the gradient of x is wrong"),
    "adam_update": ("m_hat = m / (1 - beta1**step)", "m_hat = m",
                    "the parameter after the first step"),
    "lstm_step_backward": ("dc = dc_new + dh_new", "dc = dh_new",
                           "the gradient of x_proj_t is wrong"),
    "attention_backward": ("dk = dS.T @ q * scale", "dk = dS.T @ q",
                           "off by a constant factor"),
    "col2im": ("padded[:, :, rows, columns] +=", "padded[:, :, rows, columns] =",
               "add into the pixels, do not assign"),
    "lora_forward": ("* (alpha / r)", "* alpha", "the output for x of shape (3, 5) is wrong"),
    "kv_cache_append": ("return self.keys[:, :, :self.length], self.values[:, :, :self.length]",
                        "return (self.keys[:, :, :self.length].copy(), "
                        "self.values[:, :, :self.length].copy())",
                        "return views of it"),
}

# the stub's line that the student replaces
_STUB_LINE = "raise NotImplementedError("


def _solved(name: str, text: str = None) -> str:
    """The stub of ``name`` with its NotImplementedError line replaced by the solution."""
    lines = exercises.get(name).stub_path.read_text().splitlines(keepends=True)
    (k,) = [i for i, line in enumerate(lines) if _STUB_LINE in line]
    return "".join(lines[:k]) + (text or SOLUTIONS[name]).lstrip("\n") + "".join(lines[k + 1:])


def _write(tmp_path, name, source):
    exercises.start(name, tmp_path)
    (tmp_path / f"{name}.py").write_text(source)


def _failures(results):
    return [(d, p) for d, p in results if p is not None]


def test_every_exercise_has_a_stub_a_lesson_and_a_solution_place():
    assert len(NAMES) >= 8
    assert set(SOLUTIONS) == set(NAMES) == set(MISTAKES)
    for name in NAMES:
        ex = exercises.get(name)
        assert ex.stub_path.is_file(), name
        assert (ROOT / "docs" / "course" / ex.lesson).is_file(), ex.lesson
        path, symbol = ex.solution_in.split(": ")
        assert symbol.split(".")[0] in (ROOT / path).read_text(), ex.solution_in
        assert f"exercises check {name}" in ex.stub_path.read_text()


def test_each_graded_exercise_is_in_its_lesson_and_no_other():
    graded = {}
    for lesson in sorted((ROOT / "docs" / "course").glob("[0-9][0-9]-*.md")):
        for name in re.findall(r"\*\*Graded: `(\w+)`\.\*\*", lesson.read_text()):
            graded[name] = lesson.name
    assert graded == {name: exercises.get(name).lesson for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_minigrads_own_code_passes(name):
    ex = exercises.get(name)
    results = exercises.check(name, module=ex.solution())
    assert not _failures(results), _failures(results)
    assert len(results) == len(ex.checks) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_a_students_solution_in_the_stub_passes(name, tmp_path):
    _write(tmp_path, name, _solved(name))
    results = exercises.check(name, tmp_path)
    assert not _failures(results), _failures(results)


@pytest.mark.parametrize("name", NAMES)
def test_the_untouched_stub_fails_every_check(name, tmp_path):
    exercises.start(name, tmp_path)
    results = exercises.check(name, tmp_path)
    assert results and all(p is not None and "not written yet" in p for _, p in results), results


@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_solution_fails_and_says_why(name, tmp_path):
    old, new, words = MISTAKES[name]
    source = _solved(name)
    assert source.count(old) == 1
    _write(tmp_path, name, source.replace(old, new))
    failures = _failures(exercises.check(name, tmp_path))
    assert failures, f"{name}: the wrong solution passed"
    assert any(words in p for _, p in failures), failures


def test_div_backward_on_arrays_loses_second_derivatives(tmp_path):
    body = """
        ga = Tensor(gy.data / b.data) if self.needs_input_grad[0] else None
        gb = Tensor(-gy.data * a.data / b.data**2) if self.needs_input_grad[1] else None
        return ga, gb
"""
    source = "from minigrad import Tensor\n" + _solved("div_backward", body)
    _write(tmp_path, "div_backward", source)
    failures = dict(_failures(exercises.check("div_backward", tmp_path)))
    assert list(failures) == ["second derivatives (create_graph=True)"]
    assert "not on arrays (.data)" in failures["second derivatives (create_graph=True)"]


def test_a_file_that_does_not_import_says_where(tmp_path):
    _write(tmp_path, "sum_to", _solved("sum_to", "    return x.sum(\n"))
    ((what, problem),) = exercises.check("sum_to", tmp_path)
    assert "does not import: SyntaxError" in problem and "line" in problem


def test_a_missing_file_says_to_start(tmp_path):
    ((_, problem),) = exercises.check("col2im", tmp_path)
    assert "minigrad exercises start col2im" in problem


def test_messages_name_shapes_and_hints():
    import numpy as np

    with pytest.raises(_base.Wrong, match=r"dq has shape \(2, 3\), expected \(3, 2\)"):
        _base.close("dq", np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(_base.Wrong, match="a sign error"):
        _base.close("g", -np.arange(1.0, 4.0), np.arange(1.0, 4.0))
    with pytest.raises(_base.Wrong, match=r"largest error 3 at index \(2,\)"):
        _base.close("g", np.array([1.0, 2.0, 0.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(_base.Wrong, match="NaN"):
        _base.close("g", np.array([np.nan]), np.array([1.0]))


def test_start_copies_the_stub_and_keeps_existing_work(tmp_path):
    path = exercises.start("adam_update", tmp_path / "work")
    assert path == tmp_path / "work" / "adam_update.py"
    assert path.read_text() == exercises.get("adam_update").stub_path.read_text()
    path.write_text("# my work\n")
    with pytest.raises(FileExistsError, match="already exists"):
        exercises.start("adam_update", tmp_path / "work")
    assert path.read_text() == "# my work\n"
    exercises.start("adam_update", tmp_path / "work", overwrite=True)
    assert "NotImplementedError" in path.read_text()
    with pytest.raises(KeyError, match="there are: topo_order, div_backward"):
        exercises.get("adam")


def test_the_cli_parses_the_three_actions():
    args = build_parser().parse_args(["exercises", "check", "col2im", "--dir", "w"])
    assert (args.action, args.name, str(args.dir)) == ("check", "col2im", "w")
    assert build_parser().parse_args(["exercises", "list"]).action == "list"


def _cli(*argv, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "minigrad", "exercises", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_in_a_subprocess(tmp_path):
    listed = _cli("list", cwd=tmp_path)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == NAMES

    started = _cli("start", "sum_to", cwd=tmp_path)
    assert started.returncode == 0 and (tmp_path / "minigrad-exercises" / "sum_to.py").is_file()
    stub = _cli("check", "sum_to", cwd=tmp_path)
    assert stub.returncode == 1 and "not written yet" in stub.stdout
    assert "3 of 3 checks failed" in stub.stdout and "04-broadcasting.md" in stub.stdout

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "sum_to.py").write_text(_solved("sum_to"))
    done = _cli("check", "sum_to", "--dir", "mine", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 3 checks pass" in done.stdout and "SumToFn" in done.stdout

    again = _cli("start", "sum_to", cwd=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stdout
    unknown = _cli("check", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "there are:" in unknown.stdout
