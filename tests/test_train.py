"""The hooks of the training loop (minigrad/train.py): their order around a step, schedules
stepped per batch or per epoch, gradient clipping, and batches whose inputs are not one Tensor."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset
from minigrad.nn.utils import clip_grad_norm_
from minigrad.train import Callback, GradientClipping, LRSchedulerCallback, fit


def loader(n=12, batch_size=4):
    x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


class Recorder(Callback):
    """Writes down every hook call, and whether the gradients were there."""

    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_before_optimizer_step(self, batch, logs=None):
        has_grads = all(p.grad is not None for p in self.model.parameters())
        self.events.append(("before_step", batch, has_grads))

    def on_train_batch_end(self, batch, logs=None):
        loss = logs["loss"]
        self.events.append(("batch_end", batch, loss.requires_grad, loss.ndim))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch))

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_hooks_run_in_order_around_each_step():
    model = nn.Linear(3, 2)
    recorder = Recorder()
    fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader(),
        epochs=2, callbacks=[recorder], verbose=0)
    step = [[("batch_begin", b), ("before_step", b, True), ("batch_end", b, False, 0)]
            for b in range(3)]
    epoch = [[("epoch_begin", e), *sum(step, []), ("epoch_end", e)] for e in range(2)]
    assert recorder.events == ["train_begin", *sum(epoch, []), "train_end"]


@pytest.mark.parametrize("interval, steps", [("step", 6), ("epoch", 2)])
def test_scheduler_stepped_per_batch_or_per_epoch(interval, steps):
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    fit(model, nn.CrossEntropyLoss(), opt, loader(), epochs=2,
        callbacks=[LRSchedulerCallback(scheduler, interval)], verbose=0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**steps)
    with pytest.raises(ValueError, match="'step' or 'epoch'"):
        LRSchedulerCallback(scheduler, "batch")


def test_fit_scheduler_argument_steps_per_epoch_before_the_callbacks():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    seen = []

    class LearningRates(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.optimizer.param_groups[0]["lr"])

    fit(model, nn.CrossEntropyLoss(), opt, loader(), epochs=2, verbose=0,
        scheduler=optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        callbacks=[LearningRates()])
    assert seen == pytest.approx([0.05, 0.025])


def train_by_hand(model, opt, batches, max_norm):
    for x, y in batches:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm)
        opt.step()


def test_gradient_clipping_matches_clipping_by_hand():
    mg.manual_seed(0)
    a = nn.Linear(3, 2)
    b = nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    fit(a, nn.CrossEntropyLoss(), optim.SGD(a.parameters(), lr=1.0), loader(), epochs=1,
        callbacks=[GradientClipping(0.01)], verbose=0)
    train_by_hand(b, optim.SGD(b.parameters(), lr=1.0), loader(), 0.01)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)


def test_forward_takes_batches_of_several_inputs():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 2)

        def forward(self, x, scale):
            return self.linear(x) * scale

    model = TwoInputs()
    batches = [((mg.ones(4, 3), 2.0), mg.tensor([0, 1, 0, 1])) for _ in range(3)]
    history = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                  batches, epochs=2, verbose=0, forward=lambda inputs: model(*inputs))
    assert len(history.history["loss"]) == 2
