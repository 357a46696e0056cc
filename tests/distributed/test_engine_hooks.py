"""The two engine hooks data parallel needs: Tensor.register_post_accumulate_grad_hook (runs
when a leaf's gradient is complete, while backward still runs) and autograd.queue_callback."""

import gc

import numpy as np
import pytest

import minigrad as mg
from minigrad import autograd, nn


def test_post_accumulate_hook_runs_once_per_leaf_as_soon_as_its_gradient_is_complete():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    events = []
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(
            lambda t, name=name: events.append((name, t.grad.numpy().copy())))
    hidden = model[1](model[0](mg.randn(5, 3)))
    # a hook on the first layer's output: backward reaches it after the last layer is done
    hidden.register_hook(lambda g: events.append(("hidden", None)))
    model[2](hidden).sum().backward()
    names = [name for name, _ in events]
    assert sorted(names) == ["0.bias", "0.weight", "2.bias", "2.weight", "hidden"]
    assert names.index("2.weight") < names.index("hidden") < names.index("0.weight")
    params = dict(model.named_parameters())
    for name, grad in events:  # each saw its final .grad
        if name != "hidden":
            np.testing.assert_array_equal(grad, params[name].grad.numpy())


def test_the_hook_sees_every_contribution_and_the_accumulated_grad():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    (w * 3 + w * w).sum().backward()  # two paths into w: 3 + 2w
    (w * 1).sum().backward()  # accumulates into .grad
    assert seen == [[5.0, 7.0], [6.0, 8.0]]


def test_gradients_are_unchanged_by_the_hooks():
    def grads(hooked):
        mg.manual_seed(0)
        a, b = mg.randn(3, requires_grad=True), mg.randn(3, requires_grad=True)
        if hooked:
            a.register_post_accumulate_grad_hook(lambda t: None)
        ((a + b) * (a - b)).sum().backward()  # add passes one gradient to both inputs
        a.grad.data[0] = 100.0  # .grad owns its buffer: b's is untouched
        return a.grad.numpy(), b.grad.numpy()

    plain, hooked = grads(False), grads(True)
    for x, y in zip(plain, hooked):
        np.testing.assert_array_equal(x, y)


def test_not_run_by_grad_and_removable():
    w = mg.tensor([1.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(seen.append)
    mg.grad((w * 2).sum(), w)  # returns gradients, leaves .grad alone: no hook
    assert seen == []
    handle.remove()
    (w * 2).sum().backward()
    assert seen == [] and w.grad.tolist() == [2.0]


def test_registry_forgets_dead_tensors():
    before = len(autograd._POST_ACCUMULATE_HOOKS)
    w = mg.tensor([1.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: None)
    assert len(autograd._POST_ACCUMULATE_HOOKS) == before + 1
    del w
    gc.collect()
    assert len(autograd._POST_ACCUMULATE_HOOKS) == before


def test_registration_errors():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        mg.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    y = mg.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.register_post_accumulate_grad_hook(lambda t: None)


def test_queue_callback_runs_after_the_whole_backward_pass():
    a, b = mg.tensor(2.0, requires_grad=True), mg.tensor(3.0, requires_grad=True)
    seen = []
    a.register_post_accumulate_grad_hook(
        lambda t: autograd.queue_callback(lambda: seen.append((a.grad.item(), b.grad.item()))))
    (a * b).backward()
    assert seen == [(3.0, 2.0)]  # every .grad was set by then
    with pytest.raises(RuntimeError, match="during a backward pass"):
        autograd.queue_callback(lambda: None)


def test_a_failed_backward_drops_its_callbacks():
    x = mg.tensor(1.0, requires_grad=True)
    seen = []

    def hook(g):
        autograd.queue_callback(lambda: seen.append("ran"))
        raise ValueError("hook failed")

    handle = x.register_hook(hook)
    with pytest.raises(ValueError):
        (x * 2).backward()
    handle.remove()
    (x * 2).backward()  # the engine's state was restored
    assert seen == [] and autograd._Engine.callbacks is None
