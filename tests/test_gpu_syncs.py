"""A training step on a GPU never makes the host wait for the device.

Every device -> host transfer (``.item()``, ``bool()``, a copy to the CPU, a boolean-mask
index) waits for the GPU to finish its queued work; a step that makes one loses the overlap of
Python with the GPU. These tests count them with the fake CuPy (tests/fake_cuda, which counts
every transfer), so they run under ``MINIGRAD_FAKE_CUDA=1`` only. Input checks that need
values (class indices in range) are deferred to the next synchronisation, as PyTorch's
device-side asserts are.
"""

import fake_cuda
import pytest
from conftest import FAKE_CUDA
from fake_cuda import _array

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import backend, nn

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not FAKE_CUDA, reason="counts transfers with the fake CuPy "
                       "(MINIGRAD_FAKE_CUDA=1)"),
]


class _Seq(nn.Module):
    """A recurrent or attention classifier over (B, T) token ids, small enough for the
    CUDA simulator."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.emb = nn.Embedding(11, 8)
        if kind == "transformer":
            self.body = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
        else:
            self.body = (nn.LSTM if kind == "lstm" else nn.GRU)(8, 6, batch_first=True)
        self.head = nn.Linear(8 if kind == "transformer" else 6, 11)

    def forward(self, x):
        h = self.emb(x)
        h = self.body(h, is_causal=True, src_mask=_causal(x.shape[1])) if self.kind == \
            "transformer" else self.body(h)[0]
        return self.head(h)


def _causal(T):
    return mg.triu(mg.full((T, T), float("-inf"), device="cuda"), diagonal=1)


def _model_and_batch(kind):
    if kind == "mlp":  # W1's model: Linear, ReLU, Dropout, Linear
        model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 10))
        x = mg.randn(8, 12, device="cuda")
        y = mg.randint(0, 10, (8,), device="cuda")
    else:
        model = _Seq(kind)
        x = mg.randint(0, 11, (3, 5), device="cuda")
        y = mg.randint(0, 11, (3, 5), device="cuda")
    return model.to("cuda"), x, y


@pytest.mark.parametrize("kind", ["mlp", "lstm", "gru", "transformer"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_a_training_step_never_waits_for_the_gpu(kind, fused):
    model, x, y = _model_and_batch(kind)
    opt = mg.optim.AdamW(model.parameters(), lr=1e-3)
    clip = kind != "mlp"

    def step():
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1),
                               label_smoothing=0.1)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    with mg.use_fused(fused):
        step()  # the first step compiles kernels and creates the optimizer state
        with fake_cuda.count_transfers() as c:
            loss = step()
    assert c.total == 0, f"{kind}: the host waited for the GPU: {c.counts}"
    assert loss.item() > 0  # the user's own read is the step's one synchronisation


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composite"])
def test_weighted_cross_entropy_never_waits(fused):
    """Class weights without label smoothing: no wait (with smoothing the kernel takes the
    summed weights as a host scalar: one wait)."""
    x = mg.randn(6, 5, device="cuda", requires_grad=True)
    t = mg.tensor([0, 4, 1, -100, 2, 3], device="cuda")
    w = mg.rand(5, device="cuda")
    with mg.use_fused(fused), fake_cuda.count_transfers() as c:
        for reduction in ("mean", "sum", "none"):
            F.cross_entropy(x, t, w, reduction=reduction).sum().backward()
    assert c.total == 0, c.counts


def test_bad_class_indices_are_reported_at_the_next_synchronisation():
    x = mg.randn(4, 5, device="cuda", requires_grad=True)
    bad = mg.tensor([0, 7, 1, 2], device="cuda")
    with fake_cuda.count_transfers() as c:
        loss = F.cross_entropy(x, bad)  # no wait for the check here
        loss.backward()
    assert c.total == 0
    with pytest.raises(IndexError, match=r"target 7 is out of bounds.*\[0, 5\)"):
        loss.item()
    assert loss.item() == loss.item()  # reported once; the values are there (never NaN)

    for sync in (lambda t: t.cpu(), lambda t: mg.cuda.synchronize("cuda"),
                 lambda t: bool(t.sum() > -1e9), lambda t: t.tolist()):
        loss = F.nll_loss(F.log_softmax(x, 1), mg.tensor([-3, 0, 1, 2], device="cuda"))
        with pytest.raises(IndexError, match="target -3 is out of bounds"):
            sync(loss)


def test_pending_checks_are_bounded():
    """Checks that pass are dropped at a synchronisation; without one, every
    ``MAX_DEFERRED`` checks cost one wait, so the pending list never grows without bound."""
    x = mg.randn(4, 5, device="cuda")
    good = mg.tensor([0, 1, 2, 3], device="cuda")
    for _ in range(backend.MAX_DEFERRED + 3):
        F.cross_entropy(x, good)
    assert 0 < len(backend._deferred) < backend.MAX_DEFERRED
    mg.cuda.synchronize("cuda")
    assert backend._deferred == []


@pytest.mark.parametrize("options", [dict(), dict(weight=True, ignore_index=2,
                                                  label_smoothing=0.1)])
def test_fused_cross_entropy_works_out_its_targets_in_the_kernels(monkeypatch, options):
    """On a GPU every device op costs a launch: the fused cross-entropy's targets (validity,
    range check, class weights, the per-row gradient scale) are worked out inside its two
    kernels, so a forward and backward make only the kernels' buffers and the 'mean'
    reduction's arrays (10; 28 or more when the targets were prepared with array ops), and no
    wait for the device."""
    made = []
    real = _array.ndarray._from_numpy.__func__

    def counting(cls, a):
        if a.base is None:  # a new buffer (views are not counted)
            made.append(a.shape)
        return real(cls, a)

    x = mg.randn(6, 5, device="cuda", requires_grad=True)
    t = mg.tensor([0, 4, 1, 2, 3, 2], device="cuda")
    w = mg.rand(5, device="cuda") + 0.5 if options.get("weight") else None
    kwargs = {k: v for k, v in options.items() if k != "weight"}
    F.cross_entropy(x, t, weight=w, **kwargs).backward()  # compiled and warm
    x.grad = None
    monkeypatch.setattr(_array.ndarray, "_from_numpy", classmethod(counting))
    with fake_cuda.count_transfers() as c:
        loss = F.cross_entropy(x, t, weight=w, **kwargs)
        loss.backward()
    assert c.total == 0
    # loss, lse, w_t, W, the range flag; loss.sum, w_t.sum, the division; the gradient, the
    # seed of the backward, accumulation into x.grad
    assert len(made) <= 12, made
    assert x.grad is not None and loss.item() == loss.item()
