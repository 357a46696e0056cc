"""The fused Adam's step from the flat buffers of the last one (``kernels.adam.step_again``):
the numbers and the state of the full bookkeeping (steps counted parameter by parameter, flat
buffers checked and rebuilt by ``step_group``), bit for bit, and the cases that must leave it
(a parameter's ``.data``, a state tensor or a step counter replaced or edited)."""

import copy

import numpy as np
import pytest
from helpers import ADAM_CASES

import minigrad as mg
from minigrad import kernels, optim
from minigrad.nn import Parameter
from minigrad.optim.optimizer import Optimizer

SHAPES = [(5, 4), (4,), (3, 1, 2), (1,), (7, 3), (300, 300), (3,)]  # (300, 300): two segments
CASES = ADAM_CASES


def _cpu(a):
    return np.array(a.data.get() if hasattr(a.data, "get") else a.data)


def _setup(name, kw, device, dtype):
    rng = np.random.default_rng(0)
    params = [Parameter(mg.tensor(rng.standard_normal(s), dtype=dtype, device=device))
              for s in SHAPES]
    groups = [{"params": params[:3] + params[5:]}, {"params": params[3:5], "lr": kw["lr"] * 3}]
    return params, groups, getattr(optim, name)(groups, **kw)


def _train(name, kw, device, dtype, again, steps=8, skips=False, edit=None):
    """Parameters and state after each step; ``again=False`` makes every step take the full
    bookkeeping; ``edit(step, params, opt)`` may change things between steps."""
    params, groups, opt = _setup(name, kw, device, dtype)
    rng = np.random.default_rng(7)
    history = []
    real = kernels.adam.step_again
    kernels.adam.step_again = real if again else (lambda *a: False)
    try:
        with mg.use_fused(True):
            for step in range(steps):
                for i, p in enumerate(params):
                    if skips and ((i == 1 and step % 3 == 1) or (i == 5 and step % 4 == 2)):
                        p.grad = None
                    else:
                        g = rng.standard_normal(p.shape)
                        p.grad = mg.tensor(g, dtype=dtype, device=device)
                opt.step()
                history.append(_snapshot(params, opt))
                if edit is not None:
                    opt = edit(step, params, opt) or opt
    finally:
        kernels.adam.step_again = real
    return history


def _snapshot(params, opt):
    values = [_cpu(p) for p in params]
    for p in params:
        for key, t in sorted(opt.state.get(p, {}).items()):
            values.append(_cpu(t))
            assert key != "step" or (t.data.dtype == np.float32 and t.data.shape == ()
                                     and type(t.data) is np.ndarray)
    return values


def _assert_same(a, b):
    assert len(a) == len(b)
    for step, (x, y) in enumerate(zip(a, b)):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            assert u.dtype == v.dtype
            np.testing.assert_array_equal(u, v, err_msg=f"step {step}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] + "-" + ",".join(c[1]))
@pytest.mark.parametrize("skips", [False, True], ids=["every-step", "skips"])
def test_same_numbers_as_the_full_bookkeeping(device, dtype, case, skips):
    name, kw = case
    _assert_same(_train(name, kw, device, dtype, True, skips=skips),
                 _train(name, kw, device, dtype, False, skips=skips))


def _edits(step, params, opt):
    """Everything that must send a step back through the full bookkeeping."""
    if step == 1:  # a parameter's array replaced (the flat buffer kept its address)
        params[0].data = params[0].data.copy()
    if step == 2:  # a state tensor replaced
        st = opt.state[params[5]]
        st["exp_avg"] = mg.tensor(_cpu(st["exp_avg"]).copy(), device=params[5].device)
    if step == 3:  # a step counter edited in place: that parameter is bucketed apart
        opt.state[params[2]]["step"].data[...] = 1.0
    if step == 4:  # a step counter replaced
        opt.state[params[6]]["step"] = mg.tensor(np.array(2.0, dtype=np.float32))
    if step == 5:  # a checkpoint round trip
        saved = copy.deepcopy(opt.state_dict())
        new = optim.AdamW([{"params": g["params"]} for g in opt.param_groups], lr=0.01)
        new.load_state_dict(saved)
        return new
    return None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_replaced_and_edited_state_is_noticed(device, dtype):
    kw = dict(lr=0.01)
    a = _train("AdamW", kw, device, dtype, True, steps=9, edit=_edits)
    b = _train("AdamW", kw, device, dtype, False, steps=9, edit=_edits)
    _assert_same(a, b)


def test_the_steps_are_counted_per_parameter_tensor(monkeypatch):
    params, groups, opt = _setup("Adam", dict(lr=0.01), "cpu", "float32")
    calls = []
    real = kernels.adam.step_again
    monkeypatch.setattr(kernels.adam, "step_again",
                        lambda *a: calls.append(real(*a)) or calls[-1])
    with mg.use_fused(True):
        for _ in range(4):
            for p in params:
                p.grad = mg.ones(*p.shape)
            opt.step()
    assert calls == [False, False, True, True, True, True, True, True]  # two groups
    steps = [opt.state[p]["step"] for p in params]
    assert len({id(t) for t in steps}) == len(params)  # one Tensor per parameter
    assert [float(t) for t in steps] == [4.0] * len(params)
    saved = copy.deepcopy(opt.state_dict())
    steps[0].data[...] = 9.0  # the saved copy is its own
    assert float(saved["state"][0]["step"]) == 4.0
    assert float(saved["state"][1]["step"]) == 4.0


def _stepped_twice():
    """A (3, 4) parameter of ones and its Adam after two fused steps of gradient ones."""
    w = Parameter(mg.ones(3, 4))
    opt = optim.Adam([w], lr=0.1)
    with mg.use_fused(True):
        for _ in range(2):
            w.grad = mg.ones(3, 4)
            opt.step()
    return w, opt


def test_the_params_data_replaced_is_updated():
    """The flat buffer kept the old array's address: the new array must be the one updated."""
    w, opt = _stepped_twice()
    with mg.use_fused(True):
        old = w.data
        before = old.copy()
        w.data = old.copy()
        w.grad = mg.ones(3, 4)
        opt.step()
    np.testing.assert_array_equal(old, before)
    assert (w.data < before).all()
    assert float(opt.state[w]["step"]) == 3.0


def test_a_subclass_that_counts_its_own_way_keeps_its_bookkeeping():
    class CountingAdam(optim.Adam):
        def _advance_state(self, p, group):
            self.counted = getattr(self, "counted", 0) + 1
            return Optimizer._advance_state(self, p, group)

    w = Parameter(mg.ones(3))
    opt = CountingAdam([w], lr=0.1)
    with mg.use_fused(True):
        for _ in range(3):
            w.grad = mg.ones(3)
            opt.step()
    assert opt.counted == 3


@pytest.mark.parametrize("name", ["exp_avg", "exp_avg_sq"])
def test_a_replaced_state_tensor_is_the_one_updated(name):
    w, opt = _stepped_twice()
    with mg.use_fused(True):
        new = mg.zeros(3, 4)
        opt.state[w][name] = new
        w.grad = mg.ones(3, 4)
        opt.step()
    assert opt.state[w][name] is new and (new.data > 0).all()
