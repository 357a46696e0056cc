"""Helpers the tests share: float64 test tensors, a faster gradcheck wrapper, and PyTorch parity
checks (weights copied both ways, outputs and every gradient compared)."""

import numpy as np
from conftest import to_numpy

import minigrad as mg


def tensor64(a, device, dtype="float64", requires_grad=False):
    """``a`` as a tensor on ``device`` in ``dtype``; a bool array (a mask) stays bool."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return mg.tensor(a, device=device)
    return mg.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)


def graph_on_first_call(fn):
    """gradcheck differentiates the first call of ``fn`` and only evaluates the later ones
    (finite differences): run those without recording a graph, which halves the test's time."""
    calls = []

    def wrapped(*args):
        if calls:
            with mg.no_grad():
                return fn(*args)
        calls.append(1)
        return fn(*args)

    return wrapped


def copy_torch_to_mg(tm, m):
    """Load PyTorch module ``tm``'s state dict into minigrad module ``m``."""
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})


def copy_mg_to_torch(torch, m, tm):
    """Load minigrad module ``m``'s state dict into PyTorch module ``tm`` (strict)."""
    tm.load_state_dict({k: torch.from_numpy(to_numpy(v).copy()) for k, v in
                        m.state_dict().items()})


def assert_param_grads_match(tm, m, **tol):
    """Both modules have the same parameter names, and every gradient agrees within ``tol``."""
    tparams = dict(tm.named_parameters())
    assert {n for n, _ in m.named_parameters()} == set(tparams)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(to_numpy(p.grad), tparams[name].grad.numpy(), **tol,
                                   err_msg=name)


def check_module_parity(torch, ours, theirs, x_np, dtype=mg.float64, tol=None,
                        index_input=False):
    """Copy the weights torch -> minigrad and compare the output, the input gradient and every
    parameter gradient; then perturb ours, copy minigrad -> torch and compare again.

    Args:
        dtype: the float dtype of both modules and the input.
        tol: ``assert_allclose``'s tolerances (default: 1e-5 in float64, 1e-4 in float32).
        index_input: ``x_np`` holds indices (an Embedding): no input gradient.
    """
    if tol is None:
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == mg.float64 else dict(rtol=1e-4, atol=1e-4)
    tdt = torch.float64 if dtype == mg.float64 else torch.float32
    theirs = theirs.to(tdt)
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    for direction in ("torch->mg", "mg->torch"):
        if direction == "mg->torch":
            with mg.no_grad():
                for p in ours.parameters():
                    p.data[...] = p.data * 1.5 + 0.1
            theirs.load_state_dict({k: torch.tensor(to_numpy(v))
                                    for k, v in ours.state_dict().items()})
        for p in ours.parameters():
            p.grad = None
        theirs.zero_grad()
        if index_input:
            xm, xt = mg.tensor(x_np), torch.tensor(x_np)
        else:
            xm = mg.tensor(x_np, dtype=dtype, requires_grad=True)
            xt = torch.tensor(x_np, dtype=tdt, requires_grad=True)
        ym, yt = ours(xm), theirs(xt)
        g = np.random.default_rng(1).standard_normal(yt.shape)
        ym.backward(mg.tensor(g, dtype=dtype))
        yt.backward(torch.tensor(g, dtype=tdt))
        np.testing.assert_allclose(to_numpy(ym), yt.detach().numpy(), **tol)
        if not index_input:
            np.testing.assert_allclose(to_numpy(xm.grad), xt.grad.numpy(), **tol)
        tparams = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(to_numpy(p.grad), tparams[name].grad.numpy(), **tol,
                                       err_msg=f"{direction} {name}")


# Adam/AdamW options that cover every branch of the fused update (tests/kernels/test_adam.py,
# tests/optim/test_adam_step_again.py)
ADAM_CASES = [
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True,
                  maximize=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
]
