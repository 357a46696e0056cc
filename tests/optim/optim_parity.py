"""The PyTorch parity harness the optimizer tests share: one optimizer and its torch.optim twin
stepped side by side on the same weights and gradients, compared after every step."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend, optim
from minigrad.nn import Parameter

SHAPES = [(5, 4), (4,), (3,)]


def cpu(t):
    """A tensor's (or array's) values as a NumPy array, wherever they live."""
    data = t.data if isinstance(t, mg.Tensor) else t
    return backend.to_device(data, backend.CPU)


def case_id(case):
    """A readable test id for a ``(optimizer name, options)`` case: the options but ``lr``."""
    name, kw = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items() if k != "lr")


def assert_matches_pytorch(name, kw, dtype, device, *, steps, seed, tol):
    """Step ``optim.<name>`` and ``torch.optim.<name>`` (options ``kw``) on two param groups,
    the second with three times the learning rate, for ``steps`` steps; the third parameter
    sometimes gets no gradient. The weights must agree within ``tol`` after every step, and the
    state dicts key for key and value for value at the end.

    Returns:
        ``(opt.state_dict(), topt.state_dict())``, for further checks.
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ps = [Parameter(mg.tensor(w, device=device)) for w in init]
    ts = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in init]

    def groups(params):  # two groups; the second one with its own lr
        return [{"params": params[:2]}, {"params": params[2:], "lr": kw["lr"] * 3}]

    opt = getattr(optim, name)(groups(ps), **kw)
    topt = getattr(torch.optim, name)(groups(ts), **kw)
    for step in range(steps):
        for i, (p, t, s) in enumerate(zip(ps, ts, SHAPES)):
            if i == 2 and step % 3 == 1:  # sometimes a parameter gets no gradient
                p.grad, t.grad = None, None
                continue
            g = rng.standard_normal(s).astype(dtype)
            p.grad = mg.tensor(g, device=device)
            t.grad = torch.from_numpy(g)
        opt.step()
        topt.step()
        for p, t in zip(ps, ts):
            np.testing.assert_allclose(cpu(p), t.detach().numpy(), **tol, err_msg=f"step {step}")
    # the states agree too, key for key
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for k in tsd["state"]:
        assert sorted(sd["state"][k]) == sorted(tsd["state"][k])
        for key, value in tsd["state"][k].items():
            np.testing.assert_allclose(cpu(sd["state"][k][key]), value.numpy(), **tol)
    return sd, tsd
