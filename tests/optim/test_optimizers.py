"""SGD, Adam and AdamW: hand-computed steps, param groups, state dicts, PyTorch parity."""

import copy
import doctest
import warnings

import numpy as np
import pytest

from optim_parity import assert_matches_pytorch, case_id, cpu

import minigrad as mg
from minigrad import backend, optim
from minigrad.nn import Parameter

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-9, atol=1e-12)}


def param(values, device="cpu", dtype=np.float64):
    return Parameter(mg.tensor(np.asarray(values, dtype=dtype), device=device))


def set_grad(p, values):
    p.grad = mg.tensor(np.asarray(values, dtype=p.dtype), device=p.device)


# ---------------------------------------------------------------------------- hand-computed steps


def test_sgd_plain_step(device):
    w = param([1.0, -2.0], device)
    opt = optim.SGD([w], lr=0.1)
    set_grad(w, [0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(cpu(w), [1.0 - 0.05, -2.0 - 0.1], rtol=0, atol=1e-15)
    assert len(opt.state) == 0  # no momentum, no state


def test_sgd_momentum_first_step_buffer_is_grad(device):
    w = param([1.0, -2.0], device)
    opt = optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.5)
    set_grad(w, [0.5, 1.0])
    opt.step()
    # first step: b = g (no dampening applied), w -= lr * b
    np.testing.assert_allclose(cpu(opt.state[w]["momentum_buffer"]), [0.5, 1.0])
    np.testing.assert_allclose(cpu(w), [0.95, -2.1])
    set_grad(w, [1.0, -1.0])
    opt.step()
    # second step: b = 0.9 b + (1 - 0.5) g
    b = np.array([0.9 * 0.5 + 0.5 * 1.0, 0.9 * 1.0 - 0.5])
    np.testing.assert_allclose(cpu(opt.state[w]["momentum_buffer"]), b)
    np.testing.assert_allclose(cpu(w), np.array([0.95, -2.1]) - 0.1 * b)


def test_sgd_nesterov_weight_decay_maximize(device):
    w = param([1.0, -2.0], device)
    opt = optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)
    g = np.array([0.5, 1.0])
    set_grad(w, g)
    opt.step()
    w0 = np.array([1.0, -2.0])
    d = -g + 0.01 * w0  # maximize negates the gradient, then the decay is added
    b = d
    np.testing.assert_allclose(cpu(w), w0 - 0.1 * (d + 0.9 * b))
    np.testing.assert_allclose(cpu(w.grad), g)  # the gradient itself is left alone


def test_adam_first_two_steps(device):
    w0 = np.array([1.0, -2.0, 0.0])
    w = param(w0, device)
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    opt = optim.Adam([w], lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = np.array([0.5, -1.0, 0.0]), np.array([2.0, 1.0, -3.0])
    set_grad(w, g1)
    opt.step()
    # first step: m_hat = g and v_hat = g^2, so each weight moves by lr * g / (|g| + eps)
    w1 = w0 - lr * g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(cpu(w), w1, rtol=1e-12)
    set_grad(w, g2)
    opt.step()
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    w2 = w1 - lr / (1 - b1**2) * m / (np.sqrt(v) / np.sqrt(1 - b2**2) + eps)
    np.testing.assert_allclose(cpu(w), w2, rtol=1e-12)
    state = opt.state[w]
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "step"]
    assert float(state["step"]) == 2.0 and state["step"].dtype == np.float32
    assert state["step"].device == backend.CPU
    np.testing.assert_allclose(cpu(state["exp_avg"]), m, rtol=1e-12)
    np.testing.assert_allclose(cpu(state["exp_avg_sq"]), v, rtol=1e-12)


def test_adam_weight_decay_is_added_to_gradient(device):
    w = param([2.0], device)
    opt = optim.Adam([w], lr=0.1, weight_decay=0.5)
    set_grad(w, [1.0])
    opt.step()
    np.testing.assert_allclose(cpu(opt.state[w]["exp_avg"]), [0.1 * (1.0 + 0.5 * 2.0)])


def test_adamw_decays_the_weights_directly(device):
    w = param([1.0, -2.0], device)
    opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    set_grad(w, [0.0, 0.0])
    opt.step()
    np.testing.assert_allclose(cpu(w), [0.95, -1.9], rtol=1e-12)
    assert opt.param_groups[0]["weight_decay"] == 0.5
    assert optim.AdamW([param([1.0])]).defaults["weight_decay"] == 1e-2


def test_amsgrad_keeps_the_largest_second_moment(device):
    w = param([0.0], device)
    opt = optim.Adam([w], lr=0.1, amsgrad=True)
    set_grad(w, [10.0])
    opt.step()
    set_grad(w, [0.0])
    opt.step()
    state = opt.state[w]
    v, v_max = cpu(state["exp_avg_sq"]), cpu(state["max_exp_avg_sq"])
    np.testing.assert_allclose(v_max, 0.001 * 100.0)
    assert v < v_max


def test_maximize_climbs(device):
    for opt_cls in (optim.SGD, optim.Adam, optim.AdamW):
        w = param([0.0], device)
        opt = opt_cls([w], lr=0.1, maximize=True)
        set_grad(w, [1.0])
        opt.step()
        assert cpu(w)[0] > 0


def test_float32_stays_float32(device):
    ws = [param(np.ones(3), device, np.float32) for _ in range(3)]
    opts = [
        optim.SGD([ws[0]], lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
        optim.Adam([ws[1]], lr=0.1, amsgrad=True, weight_decay=0.1),
        optim.AdamW([ws[2]], lr=0.1),
    ]
    for w, opt in zip(ws, opts):
        for _ in range(2):
            set_grad(w, [1.0, 2.0, 3.0])
            opt.step()
        assert w.dtype == np.float32
        for key, value in opt.state[w].items():
            if key != "step":
                assert value.dtype == np.float32 and value.device == w.device, key


def test_quadratic_converges(device):
    # minimise ||A w - b||^2 through autograd: the training loop, end to end
    rng = np.random.default_rng(0)
    a = mg.tensor(rng.standard_normal((8, 3)), device=device)
    w_true = np.array([1.0, -2.0, 0.5])
    b = mg.tensor(cpu(a) @ w_true, device=device)
    for make in (
        lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.05),
    ):
        w = Parameter(mg.zeros(3, dtype=mg.float64, device=device))
        opt = make([w])
        for _ in range(500):
            opt.zero_grad()
            loss = ((a @ w - b) ** 2).sum()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(cpu(w), w_true, atol=1e-3)


def test_closure_returns_the_loss():
    w = param([3.0])
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with mg.no_grad():  # the closure re-enables recording
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(cpu(w), [3.0 - 0.1 * 6.0])


# ---------------------------------------------------------------------------- grad None, groups


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
        lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.1),
    ],
    ids=["sgd", "adam", "adamw"],
)
def test_params_without_grad_are_skipped(make, device):
    a, b = param([1.0, 2.0], device), param([3.0, 4.0], device)
    opt = make([a, b])
    set_grad(a, [1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(cpu(b), [3.0, 4.0])  # no weight decay either
    assert b not in opt.state and a in opt.state
    assert list(opt.state_dict()["state"]) == [0]


def test_param_groups_have_their_own_lr(device):
    a, b = param([1.0], device), param([1.0], device)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert opt.param_groups[1]["momentum"] == 0.0 and opt.param_groups[0]["lr"] == 0.1
    for p in (a, b):
        set_grad(p, [1.0])
    opt.step()
    np.testing.assert_allclose(cpu(a), [0.9])
    np.testing.assert_allclose(cpu(b), [0.5])
    opt.param_groups[0]["lr"] = 0.2  # changing a group's lr takes effect on the next step
    opt.step()
    np.testing.assert_allclose(cpu(a), [0.7])
    np.testing.assert_allclose(cpu(b), [0.0])


def test_named_parameters_and_add_param_group():
    a, b = param([1.0]), param([2.0])
    opt = optim.Adam([("a", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a"]
    opt.add_param_group({"params": b, "lr": 0.01})
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is b
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_bad_params():
    w = param([1.0])
    with pytest.raises(TypeError):
        optim.SGD(w, lr=0.1)  # a single tensor, not an iterable of them
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        optim.SGD({w}, lr=0.1)
    with pytest.raises(TypeError):
        optim.SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optim.SGD([w, w], lr=0.1)
    assert any("duplicate" in str(c.message) for c in caught)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=-1.0),
        lambda ps: optim.SGD(ps, momentum=-0.1),
        lambda ps: optim.SGD(ps, weight_decay=-0.1),
        lambda ps: optim.SGD(ps, nesterov=True),
        lambda ps: optim.SGD(ps, momentum=0.9, dampening=0.1, nesterov=True),
        lambda ps: optim.Adam(ps, lr=-1.0),
        lambda ps: optim.Adam(ps, eps=-1.0),
        lambda ps: optim.Adam(ps, betas=(1.0, 0.999)),
        lambda ps: optim.Adam(ps, betas=(0.9, -0.1)),
        lambda ps: optim.AdamW(ps, weight_decay=-1.0),
    ],
)
def test_invalid_hyperparameters(make):
    with pytest.raises(ValueError):
        make([param([1.0])])


def test_zero_grad_both_ways(device):
    a, b = param([1.0], device), param([2.0], device)
    opt = optim.SGD([a, b], lr=0.1)
    set_grad(a, [5.0])
    opt.zero_grad(set_to_none=False)
    assert b.grad is None  # no gradient is created
    assert a.grad is not None and cpu(a.grad)[0] == 0.0
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_zero_grad_detaches_a_recorded_gradient():
    w = param([3.0])
    (w * w * w).sum().backward(create_graph=True)
    assert w.grad.grad_fn is not None
    opt = optim.SGD([w], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert w.grad.grad_fn is None and not w.grad.requires_grad and cpu(w.grad)[0] == 0.0


def test_step_does_not_write_the_gradient(device):
    for make in (
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1, maximize=True),
    ):
        w = param([1.0, 2.0], device)
        opt = make([w])
        for _ in range(2):
            set_grad(w, [0.5, -0.5])
            opt.step()
            np.testing.assert_array_equal(cpu(w.grad), [0.5, -0.5])
        # the momentum buffer does not alias the gradient
        if "momentum_buffer" in opt.state[w]:
            w.grad.data[...] = 7.0
            assert cpu(opt.state[w]["momentum_buffer"])[0] != 7.0


def test_repr():
    text = repr(optim.SGD([param([1.0])], lr=0.1))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "lr: 0.1" in text


# ---------------------------------------------------------------------------- state dicts

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.01),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.05),
}


def _grads(n_steps, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in shapes] for _ in range(n_steps)]


def _params(shapes, device, seed=1):
    rng = np.random.default_rng(seed)
    return [param(rng.standard_normal(s), device) for s in shapes]


def _grouped(ps):
    return [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_layout(name):
    ps = _params([(2, 3), (3,), (1,)], "cpu")
    opt = OPTIMIZERS[name](_grouped(ps))
    for p, g in zip(ps[:2], _grads(1, [(2, 3), (3,)])[0]):
        set_grad(p, g)
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    assert sd["param_groups"][1]["lr"] == 0.01
    assert sorted(sd["state"]) == [0, 1]  # the third parameter had no gradient
    keys = {
        "sgd": ["momentum_buffer"],
        "adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"],
        "adamw": ["exp_avg", "exp_avg_sq", "step"],
    }[name]
    assert sorted(sd["state"][0]) == keys
    assert all(isinstance(v, mg.Tensor) for v in sd["state"][1].values())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_continues_identically(name, device):
    shapes = [(2, 3), (3,)]
    grads = _grads(10, shapes)
    # the uninterrupted run
    ps = _params(shapes, device)
    opt = OPTIMIZERS[name](_grouped(ps))
    for step in grads:
        for p, g in zip(ps, step):
            set_grad(p, g)
        opt.step()
    # the same run, stopped after 4 steps and resumed in a fresh optimizer
    qs = _params(shapes, device)
    opt1 = OPTIMIZERS[name](_grouped(qs))
    for step in grads[:4]:
        for p, g in zip(qs, step):
            set_grad(p, g)
        opt1.step()
    saved = copy.deepcopy(opt1.state_dict())
    rs = [param(cpu(q), device) for q in qs]
    opt2 = OPTIMIZERS[name]([{"params": rs[:1]}, {"params": rs[1:], "lr": 0.5}])
    opt2.load_state_dict(saved)
    assert opt2.param_groups[1]["lr"] == 0.01  # the saved options win
    assert opt2.param_groups[1]["params"][0] is rs[1]
    for step in grads[4:]:
        for p, g in zip(rs, step):
            set_grad(p, g)
        opt2.step()
    for p, r in zip(ps, rs):
        np.testing.assert_array_equal(cpu(p), cpu(r))
    # loading copies: the saved dict is not stepped along
    for key, value in saved["state"][0].items():
        assert value is not opt2.state[rs[0]][key]


def test_load_state_dict_casts_to_the_parameter(device):
    w64 = param([1.0, 2.0], "cpu")
    opt = optim.Adam([w64], lr=0.1)
    set_grad(w64, [1.0, 1.0])
    opt.step()
    sd = opt.state_dict()
    w32 = param([1.0, 2.0], device, np.float32)
    opt32 = optim.Adam([w32], lr=0.1)
    opt32.load_state_dict(sd)
    state = opt32.state[w32]
    assert state["exp_avg"].dtype == np.float32 and state["exp_avg"].device == w32.device
    assert state["step"].dtype == np.float32 and state["step"].device == backend.CPU
    # arrays and string keys (a state dict that went through JSON or a flat file) load too
    sd_arrays = {
        "state": {"0": {k: cpu(v) for k, v in sd["state"][0].items()}},
        "param_groups": sd["param_groups"],
    }
    opt32.load_state_dict(sd_arrays)
    np.testing.assert_allclose(cpu(opt32.state[w32]["exp_avg_sq"]), cpu(state["exp_avg_sq"]))
    set_grad(w32, [1.0, 1.0])
    opt32.step()
    assert float(opt32.state[w32]["step"]) == 2.0


def test_load_state_dict_mismatches():
    a, b = param([1.0]), param([2.0])
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="size"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)


def test_doctests():
    import minigrad.nn.utils
    import minigrad.optim.adam
    import minigrad.optim.lr_scheduler
    import minigrad.optim.optimizer
    import minigrad.optim.sgd

    for module in (
        optim,
        minigrad.optim.optimizer,
        minigrad.optim.sgd,
        minigrad.optim.adam,
        minigrad.optim.lr_scheduler,
        minigrad.nn.utils,
    ):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__


# ---------------------------------------------------------------------------- PyTorch parity

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.1, momentum=0.8, dampening=0.1, weight_decay=0.05),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05, maximize=True),
]
ADAM_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
    dict(lr=0.01, maximize=True),
]
ADAMW_CASES = [
    dict(lr=0.01),
    dict(lr=0.01, weight_decay=0.1, amsgrad=True),
    dict(lr=0.01, maximize=True),
]
PARITY = (
    [("SGD", kw) for kw in SGD_CASES]
    + [("Adam", kw) for kw in ADAM_CASES]
    + [("AdamW", kw) for kw in ADAMW_CASES]
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", PARITY, ids=case_id)
def test_matches_pytorch_every_step(case, dtype, device):
    name, kw = case
    assert_matches_pytorch(name, kw, dtype, device, steps=20, seed=42, tol=TOL[dtype])


@pytest.mark.torch
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_state_dict_exchanges_with_pytorch(name):
    torch = pytest.importorskip("torch")
    kw = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01, amsgrad=True)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(8)]

    def run_mg(p, opt, gs):
        for g in gs:
            set_grad(p, g)
            opt.step()

    def run_torch(t, topt, gs):
        for g in gs:
            t.grad = torch.from_numpy(g)
            topt.step()

    # minigrad -> PyTorch
    p = param(w0)
    opt = getattr(optim, name)([p], **kw)
    run_mg(p, opt, grads[:4])
    sd = opt.state_dict()
    t = torch.nn.Parameter(torch.from_numpy(cpu(p).copy()))
    topt = getattr(torch.optim, name)([t], **kw)
    topt.load_state_dict(
        {
            "state": {
                k: {kk: torch.from_numpy(cpu(v).copy()) for kk, v in s.items()}
                for k, s in sd["state"].items()
            },
            "param_groups": sd["param_groups"],
        }
    )
    run_mg(p, opt, grads[4:])
    run_torch(t, topt, grads[4:])
    np.testing.assert_allclose(cpu(p), t.detach().numpy(), **TOL[np.float64])

    # PyTorch -> minigrad (torch tensors are read through NumPy)
    q = param(t.detach().numpy())
    opt2 = getattr(optim, name)([q], **kw)
    opt2.load_state_dict(topt.state_dict())
    run_mg(q, opt2, grads[:3])
    run_torch(t, topt, grads[:3])
    np.testing.assert_allclose(cpu(q), t.detach().numpy(), **TOL[np.float64])


# ---------------------------------------------------------------------------- with nn layers


def test_training_a_small_model():
    layers = pytest.importorskip("minigrad.nn.layers")
    from minigrad.nn.utils import clip_grad_norm_

    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((64, 3)).astype(np.float32))
    y = mg.tensor((cpu(x) @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)) + 0.3)
    model = layers.Linear(3, 1)
    opt = optim.Adam(model.parameters(), lr=0.05)  # a generator of parameters
    sched = optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=5.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert opt.param_groups[0]["lr"] == 0.05 * 0.5**3
