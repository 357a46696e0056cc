"""RMSprop, Adagrad, Adamax, NAdam and the schedulers OneCycleLR, ReduceLROnPlateau,
ExponentialLR, CosineAnnealingWarmRestarts and MultiStepLR, step for step against PyTorch."""

import numpy as np
import pytest

from optim_parity import assert_matches_pytorch, case_id, cpu

import minigrad as mg
from minigrad import optim
from minigrad.nn import Parameter

TOL = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


CASES = [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.5,
                     centered=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.1)),
    ("Adagrad", dict(lr=0.1, eps=1e-6, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, momentum_decay=0.01, maximize=True)),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_pytorch_every_step(case, dtype, device):
    name, kw = case
    sd, tsd = assert_matches_pytorch(name, kw, dtype, device, steps=40, seed=7, tol=TOL[dtype])
    # the state dicts agree in dtypes and param-group options too
    for k in tsd["state"]:
        for key, value in tsd["state"][k].items():
            assert cpu(sd["state"][k][key]).dtype == value.numpy().dtype, key
    for group, tgroup in zip(sd["param_groups"], tsd["param_groups"]):
        assert sorted(group) == sorted(tgroup)
        assert group == tgroup


@pytest.mark.torch
@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adamax", "NAdam"])
def test_defaults_are_pytorchs(name):
    torch = pytest.importorskip("torch")
    opt = getattr(optim, name)([Parameter(mg.zeros(2))])
    topt = getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))])
    assert opt.defaults == topt.defaults


@pytest.mark.torch
@pytest.mark.parametrize("name,kw", [
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adamax", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.01)),
])
def test_state_dict_exchanges_with_pytorch(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(6) for _ in range(8)]
    p = Parameter(mg.tensor(rng.standard_normal(6)))
    opt = getattr(optim, name)([p], **kw)
    for g in grads[:4]:
        p.grad = mg.tensor(g)
        opt.step()
    sd = opt.state_dict()
    t = torch.nn.Parameter(torch.from_numpy(cpu(p).copy()))
    topt = getattr(torch.optim, name)([t], **kw)
    topt.load_state_dict({
        "state": {k: {kk: torch.from_numpy(cpu(v).copy()) for kk, v in s.items()}
                  for k, s in sd["state"].items()},
        "param_groups": sd["param_groups"],
    })
    # PyTorch -> minigrad: torch tensors are read through NumPy
    q = Parameter(mg.tensor(cpu(p).copy()))
    opt2 = getattr(optim, name)([q], **kw)
    opt2.load_state_dict(topt.state_dict())
    for g in grads[4:]:
        p.grad, q.grad, t.grad = mg.tensor(g), mg.tensor(g), torch.from_numpy(g)
        opt.step()
        opt2.step()
        topt.step()
    # NOTE: PyTorch's load casts NAdam's mu_product to the parameter's dtype (so does ours),
    # which moves the never-loaded run p by ~1e-11
    np.testing.assert_allclose(cpu(p), t.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(cpu(q), t.detach().numpy(), **TOL[np.float64])
    assert opt2.state[q]["step"].dtype == np.float32  # a float32 CPU scalar, as PyTorch's


def test_invalid_options_raise():
    w = [Parameter(mg.zeros(2))]
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop(w, alpha=-1)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad(w, lr_decay=-1)
    with pytest.raises(ValueError, match="beta"):
        optim.Adamax(w, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="momentum_decay"):
        optim.NAdam(w, momentum_decay=-1)


def test_adagrad_state_exists_before_the_first_step():
    w = Parameter(mg.ones(3))
    opt = optim.Adagrad([w], initial_accumulator_value=0.5)
    state = opt.state_dict()["state"][0]
    assert float(state["step"].item()) == 0.0
    np.testing.assert_array_equal(cpu(state["sum"]), [0.5, 0.5, 0.5])


def test_training_a_small_model_with_each():
    from minigrad.nn import Linear

    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((64, 3)).astype(np.float32))
    y = mg.tensor(cpu(x) @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3)
    for name, lr in [("RMSprop", 0.01), ("Adagrad", 0.3), ("Adamax", 0.05), ("NAdam", 0.05)]:
        mg.manual_seed(0)
        model = Linear(3, 1)
        opt = getattr(optim, name)(model.parameters(), lr=lr)
        first = None
        for _ in range(300):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            first = first if first is not None else loss.item()
        assert loss.item() < 1e-2 * first, name


# ---------------------------------------------------------------------------- schedulers

SCHEDULERS = [
    ("SGD", dict(lr=0.1, momentum=0.9), "OneCycleLR", dict(max_lr=1.0, total_steps=60)),
    ("SGD", dict(lr=0.1, momentum=0.9), "OneCycleLR",
     dict(max_lr=[0.5, 2.0], epochs=6, steps_per_epoch=10, pct_start=0.25,
          anneal_strategy="linear", three_phase=True, div_factor=10.0)),
    ("Adam", dict(lr=0.01), "OneCycleLR", dict(max_lr=0.05, total_steps=60)),
    ("NAdam", dict(lr=0.01), "OneCycleLR",
     dict(max_lr=0.05, total_steps=60, base_momentum=0.8, max_momentum=0.9)),
    ("SGD", dict(lr=0.1), "OneCycleLR",
     dict(max_lr=0.3, total_steps=60, cycle_momentum=False, final_div_factor=100.0)),
    ("SGD", dict(lr=0.1, momentum=0.9), "ExponentialLR", dict(gamma=0.93)),
    ("Adam", dict(lr=0.01), "ExponentialLR", dict(gamma=0.97)),
    ("SGD", dict(lr=0.1), "CosineAnnealingWarmRestarts", dict(T_0=7)),
    ("SGD", dict(lr=0.1, momentum=0.9), "CosineAnnealingWarmRestarts",
     dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("RMSprop", dict(lr=0.01), "MultiStepLR", dict(milestones=[5, 20, 20, 41], gamma=0.5)),
    ("Adagrad", dict(lr=0.1), "MultiStepLR", dict(milestones=[10, 30])),
]


@pytest.mark.torch
@pytest.mark.parametrize("case", SCHEDULERS, ids=lambda c: f"{c[2]}-{c[0]}-{len(c[3])}")
def test_scheduler_matches_pytorch_every_step(case):
    """The same learning rates, momenta and parameters as PyTorch over 60 steps."""
    torch = pytest.importorskip("torch")
    opt_name, opt_kw, sched_name, sched_kw = case
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s) for s in [(4, 3), (3,)]]
    ps = [Parameter(mg.tensor(w)) for w in init]
    ts = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in init]

    def groups(params):
        return [{"params": params[:1]}, {"params": params[1:], "lr": opt_kw["lr"] * 2}]

    opt = getattr(optim, opt_name)(groups(ps), **opt_kw)
    topt = getattr(torch.optim, opt_name)(groups(ts), **opt_kw)
    sched = getattr(optim.lr_scheduler, sched_name)(opt, **sched_kw)
    tsched = getattr(torch.optim.lr_scheduler, sched_name)(topt, **sched_kw)
    for step in range(60):
        assert sched.get_last_lr() == tsched.get_last_lr(), f"step {step}"
        for group, tgroup in zip(opt.param_groups, topt.param_groups):
            for key in ("lr", "momentum", "betas"):
                assert group.get(key) == tgroup.get(key), (step, key)
        for p, t in zip(ps, ts):
            g = rng.standard_normal(p.shape)
            p.grad, t.grad = mg.tensor(g), torch.from_numpy(g)
        opt.step()
        topt.step()
        if step < 59:  # OneCycleLR refuses to step past total_steps
            sched.step()
            tsched.step()
        for p, t in zip(ps, ts):
            np.testing.assert_allclose(cpu(p), t.detach().numpy(), **TOL[np.float64])
    state, tstate = sched.state_dict(), tsched.state_dict()
    for key in ("last_epoch", "base_lrs", "_last_lr"):
        assert state[key] == tstate[key], key


@pytest.mark.torch
def test_cosine_warm_restarts_fractional_epochs_match_pytorch():
    torch = pytest.importorskip("torch")
    opt = optim.SGD([Parameter(mg.zeros(1))], lr=0.1)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=3, eta_min=1e-3)
    tsched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, 2, 3, eta_min=1e-3)
    for epoch in range(12):
        for i in range(5):
            sched.step(epoch + i / 5)
            tsched.step(epoch + i / 5)
            assert sched.get_last_lr() == tsched.get_last_lr(), (epoch, i)
            assert (sched.T_cur, sched.T_i) == (tsched.T_cur, tsched.T_i)


@pytest.mark.torch
@pytest.mark.parametrize("kw", [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, cooldown=2),
    dict(threshold_mode="abs", threshold=0.05, patience=1, min_lr=[0.02, 0.001]),
    dict(factor=0.3, patience=0, min_lr=0.01, eps=1e-3),
])
def test_reduce_lr_on_plateau_matches_pytorch(kw):
    torch = pytest.importorskip("torch")
    ps = [Parameter(mg.zeros(1)), Parameter(mg.zeros(1))]
    ts = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.1)
    topt = torch.optim.SGD([{"params": ts[:1]}, {"params": ts[1:], "lr": 0.5}], lr=0.1)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    rng = np.random.default_rng(1)
    # a metric that improves, then wanders on a plateau
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 + 0.02 * rng.standard_normal(70)])
    for i, m in enumerate(metrics):
        value = mg.tensor(m) if i % 2 else float(m)  # a 0-d Tensor works as the metric
        sched.step(value)
        tsched.step(float(m))
        assert sched.get_last_lr() == tsched.get_last_lr(), i
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups]
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == (
            tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter)
    assert sched.get_last_lr() != [0.1, 0.5]  # it did reduce
    # a state dict round trip resumes the same schedule
    fresh = optim.lr_scheduler.ReduceLROnPlateau(opt)
    fresh.load_state_dict(sched.state_dict())
    assert (fresh.mode, fresh.best, fresh.patience) == (sched.mode, sched.best, sched.patience)


def test_one_cycle_refuses_steps_past_the_end():
    opt = optim.SGD([Parameter(mg.zeros(1))], lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    sched.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="total steps is 3"):
        sched.step()
    with pytest.raises(ValueError, match="momentum"):
        optim.lr_scheduler.OneCycleLR(optim.Adagrad([Parameter(mg.zeros(1))]), 1.0, 3)


def test_doctests():
    import doctest

    from minigrad.optim import adagrad, adamax, nadam, rmsprop

    for module in (rmsprop, adagrad, adamax, nadam):
        assert doctest.testmod(module).failed == 0, module.__name__
