"""Learning-rate schedulers: hand-computed values, state dicts, and PyTorch's exact floats."""

import math
import warnings

import pytest

import minigrad as mg
from minigrad import optim
from minigrad.nn import Parameter
from minigrad.optim import lr_scheduler as sched_mod

EPOCHS = 40


def make_optimizer(lrs=(0.1, 0.02)):
    """An SGD optimizer with one param group per learning rate."""
    groups = [{"params": [Parameter(mg.zeros(2))], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0], momentum=0.9)


def run(scheduler, epochs=EPOCHS):
    """The learning rates of every group, epoch by epoch (the first is the constructor's)."""
    lrs = []
    for _ in range(epochs):
        lrs.append(list(scheduler.get_last_lr()))
        assert lrs[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


# ---------------------------------------------------------------------------- hand-computed


def test_step_lr():
    opt = make_optimizer([1.0])
    lrs = run(sched_mod.StepLR(opt, step_size=3, gamma=0.5), 8)
    assert [x[0] for x in lrs] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_multi_step_lr_repeated_milestone():
    opt = make_optimizer([1.0])
    lrs = run(sched_mod.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5), 6)
    assert [x[0] for x in lrs] == [1.0, 1.0, 0.5, 0.5, 0.125, 0.125]


def test_exponential_lr():
    opt = make_optimizer([1.0])
    lrs = run(sched_mod.ExponentialLR(opt, gamma=0.5), 4)
    assert [x[0] for x in lrs] == [1.0, 0.5, 0.25, 0.125]


def test_lambda_lr_per_group():
    opt = make_optimizer([1.0, 2.0])
    sched = sched_mod.LambdaLR(opt, [lambda e: e + 1, lambda e: 0.5**e])
    assert run(sched, 3) == [[1.0, 2.0], [2.0, 1.0], [3.0, 0.5]]
    with pytest.raises(ValueError, match="lr_lambdas"):
        sched_mod.LambdaLR(make_optimizer([1.0, 2.0]), [lambda e: 1.0])


def test_linear_lr_warm_up():
    opt = make_optimizer([1.0])
    lrs = [x[0] for x in run(sched_mod.LinearLR(opt, start_factor=0.25, total_iters=3), 6)]
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0], rel=1e-15)


def test_constant_lr():
    opt = make_optimizer([1.0])
    lrs = [x[0] for x in run(sched_mod.ConstantLR(opt, factor=0.5, total_iters=2), 4)]
    assert lrs == [0.5, 0.5, 1.0, 1.0]


def test_cosine_follows_the_closed_form_closely():
    opt = make_optimizer([0.1])
    t_max, eta_min = 10, 0.001
    lrs = [x[0] for x in run(sched_mod.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min))]
    closed = [
        eta_min + (0.1 - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2 for t in range(EPOCHS)
    ]
    assert lrs == pytest.approx(closed, rel=1e-12, abs=1e-15)
    assert lrs[t_max] == pytest.approx(eta_min)  # the trough, then back up


def test_sequential_warm_up_then_cosine():
    opt = make_optimizer([1.0])
    warm = sched_mod.LinearLR(opt, start_factor=0.1, total_iters=4)
    cos = sched_mod.CosineAnnealingLR(opt, T_max=10)
    sched = sched_mod.SequentialLR(opt, [warm, cos], milestones=[4])
    lrs = [x[0] for x in run(sched, 15)]
    assert lrs[:4] == pytest.approx([0.1, 0.325, 0.55, 0.775])
    assert lrs[4] == 1.0  # the cosine restarts at its epoch 0 at the milestone
    assert lrs[4:15] == pytest.approx([(1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)])


def test_scheduler_drives_the_optimizer():
    w = Parameter(mg.tensor([0.0]))
    opt = optim.SGD([w], lr=1.0)
    sched = sched_mod.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        w.grad = mg.tensor([-1.0])
        opt.step()
        sched.step()
    assert w.item() == 1.0 + 0.5 + 0.25


def test_step_with_epoch_uses_the_closed_form():
    opt = make_optimizer([1.0])
    sched = sched_mod.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(5)
    assert sched.get_last_lr() == [0.25] and sched.last_epoch == 5


def test_invalid_arguments():
    with pytest.raises(TypeError, match="not an Optimizer"):
        sched_mod.StepLR(object(), step_size=1)
    with pytest.raises(ValueError):
        sched_mod.LinearLR(make_optimizer(), start_factor=0.0)
    with pytest.raises(ValueError):
        sched_mod.LinearLR(make_optimizer(), end_factor=1.5)
    with pytest.raises(ValueError):
        sched_mod.ConstantLR(make_optimizer(), factor=2.0)
    opt = make_optimizer()
    a, b = sched_mod.ConstantLR(opt), sched_mod.ExponentialLR(opt, 0.9)
    with pytest.raises(ValueError, match="milestone"):
        sched_mod.SequentialLR(opt, [a, b], milestones=[])
    with pytest.raises(ValueError, match="same optimizer"):
        sched_mod.SequentialLR(opt, [a, sched_mod.ExponentialLR(make_optimizer(), 0.9)], [3])
    with pytest.raises(KeyError, match="initial_lr"):
        sched_mod.StepLR(make_optimizer(), step_size=2, last_epoch=3)


# ---------------------------------------------------------------------------- state dicts


def _warm_cosine(opt):
    warm = sched_mod.LinearLR(opt, start_factor=0.1, total_iters=5)
    cos = sched_mod.CosineAnnealingLR(opt, T_max=20, eta_min=1e-4)
    return sched_mod.SequentialLR(opt, [warm, cos], milestones=[5])


MAKERS = {
    "step": lambda opt: sched_mod.StepLR(opt, step_size=4, gamma=0.7),
    "cosine": lambda opt: sched_mod.CosineAnnealingLR(opt, T_max=12, eta_min=0.001),
    "lambda": lambda opt: sched_mod.LambdaLR(opt, lambda e: 1 / (1 + e)),
    "sequential": _warm_cosine,
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_state_dict_resumes_the_schedule(name):
    full = run(MAKERS[name](make_optimizer()), 30)
    opt = make_optimizer()
    sched = MAKERS[name](opt)
    first = run(sched, 10)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved_sched
    # resume: build the scheduler first, then load both (PyTorch's order)
    opt2 = make_optimizer([0.5, 0.5])
    sched2 = MAKERS[name](opt2)
    sched2.load_state_dict(saved_sched)
    opt2.load_state_dict(saved_opt)
    rest = run(sched2, 20)
    assert first + rest == full


def test_lambda_state_dict_saves_callable_objects_only():
    class Decay:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, epoch):
            return self.rate**epoch

    sched = sched_mod.LambdaLR(make_optimizer(), [Decay(), lambda e: 1.0])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}, None]
    sd["lr_lambdas"][0]["rate"] = 0.25
    sched.load_state_dict(sd)
    assert sched.lr_lambdas[0].rate == 0.25


# ---------------------------------------------------------------------------- PyTorch parity

TORCH_CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 9, 9, 20], gamma=0.7),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=13, eta_min=0.003),
    "CosineAnnealingLR-no-min": lambda m, o: m.CosineAnnealingLR(o, T_max=7),
    "LambdaLR": lambda m, o: m.LambdaLR(o, [lambda e: 0.95**e, lambda e: 1 / (e + 1)]),
    "LinearLR": lambda m, o: m.LinearLR(o),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=0.9, end_factor=0.1, total_iters=17),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.3, total_iters=6),
    "SequentialLR-warmup-cosine": lambda m, o: m.SequentialLR(
        o,
        [
            m.LinearLR(o, start_factor=0.01, total_iters=8),
            m.CosineAnnealingLR(o, T_max=25, eta_min=1e-5),
        ],
        milestones=[8],
    ),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o,
        [
            m.ConstantLR(o, factor=0.2, total_iters=3),
            m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=4, gamma=0.5),
        ],
        milestones=[5, 15],
    ),
}


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_matches_pytorch_exactly(name):
    torch = pytest.importorskip("torch")
    lrs = (0.1, 0.037)
    tgroups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    topt = torch.optim.SGD(tgroups, lr=lrs[0], momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched = TORCH_CASES[name](torch.optim.lr_scheduler, topt)
        expected = []
        for _ in range(EPOCHS):
            expected.append(list(tsched.get_last_lr()))
            topt.step()
            tsched.step()
    got = run(TORCH_CASES[name](sched_mod, make_optimizer(lrs)))
    assert got == expected  # the same floats, bit for bit
