"""mg.autocast: output dtypes per op against PyTorch's autocast, the CUDA policy on the
stand-in, master weights, CPU products in float32 rounded, bfloat16 through ml_dtypes."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F


def _needs_bfloat16():
    pytest.importorskip("ml_dtypes")  # bfloat16 on NumPy (CI installs it)


# op name -> call, for minigrad or torch (lib, fn);
# inputs: x (4, 8), w (6, 8), b (6,), logits (4, 6)
def _cases(lib, fn):
    return {
        "matmul": lambda t: lib.matmul(t["x"], t["w"].T if lib is not mg else t["w"].t()),
        "mm": lambda t: lib.mm(t["x"], t["w"].t()),
        "bmm": lambda t: lib.bmm(t["x"].reshape(2, 2, 8), t["w"].t().reshape(2, 8, 3)),
        "linear": lambda t: fn.linear(t["x"], t["w"], t["b"]),
        "sdpa": lambda t: fn.scaled_dot_product_attention(
            t["x"].reshape(1, 4, 8), t["x"].reshape(1, 4, 8), t["x"].reshape(1, 4, 8)),
        "softmax": lambda t: fn.softmax(t["logits"], dim=-1),
        "log_softmax": lambda t: fn.log_softmax(t["logits"], dim=-1),
        "softmax_dtype": lambda t: fn.softmax(t["logits"], dim=-1, dtype=lib.float64),
        "layer_norm": lambda t: fn.layer_norm(t["logits"], (6,), t["b"], t["b"]),
        "cross_entropy": lambda t: fn.cross_entropy(t["logits"], t["target"]),
        "nll_loss": lambda t: fn.nll_loss(t["logits"], t["target"]),
        "mse_loss": lambda t: fn.mse_loss(t["logits"], t["logits2"]),
        "l1_loss": lambda t: fn.l1_loss(t["logits"], t["logits2"]),
        "smooth_l1_loss": lambda t: fn.smooth_l1_loss(t["logits"], t["logits2"]),
        "huber_loss": lambda t: fn.huber_loss(t["logits"], t["logits2"]),
        "bce_with_logits": lambda t: fn.binary_cross_entropy_with_logits(
            t["logits"], t["logits2"].sigmoid()),
        "bce": lambda t: fn.binary_cross_entropy(t["logits"].sigmoid(), t["logits2"].sigmoid()),
        "add": lambda t: t["logits"] + t["logits2"],
        "sum": lambda t: t["logits"].sum(),
        "sum_dim": lambda t: lib.sum(t["logits"], dim=1),
        "prod": lambda t: lib.prod(t["logits"], dim=1),
        "logsumexp": lambda t: lib.logsumexp(t["logits"], dim=1),
        "softmax_method": lambda t: t["logits"].softmax(dim=-1),
        # CUDA's float32 list beyond the reductions and losses (the CPU's leaves them alone)
        "exp": lambda t: t["logits"].exp(),
        "log": lambda t: t["logits"].abs().log(),
        "log1p": lambda t: t["logits"].abs().log1p(),
        "rsqrt": lambda t: t["logits"].abs().rsqrt(),
        "pow_scalar": lambda t: t["logits"] ** 2,
        "pow_tensor": lambda t: lib.pow(t["logits"].abs(), t["logits2"]),
        "cumsum": lambda t: lib.cumsum(t["logits"], dim=1),
        "cumprod": lambda t: lib.cumprod(t["logits"], dim=1),
        "norm": lambda t: t["logits"].norm(),
        "softplus": lambda t: fn.softplus(t["logits"]),
        "group_norm": lambda t: fn.group_norm(t["logits"].reshape(4, 6, 1), 2, t["b"], t["b"]),
        "rms_norm": lambda t: fn.rms_norm(t["logits"], (6,), t["b"], eps=1e-5),
        "cosine_similarity": lambda t: fn.cosine_similarity(t["logits"], t["logits2"]),
        "kl_div": lambda t: fn.kl_div(t["logits"], t["logits2"].softmax(-1),
                                      reduction="batchmean"),
        "interpolate": lambda t: fn.interpolate(t["logits"].reshape(1, 4, 6), scale_factor=2),
        # composites of listed ops that PyTorch keeps in their input's dtype
        "elu": lambda t: fn.elu(t["logits"]),
        "mish": lambda t: fn.mish(t["logits"]),
        "logsigmoid": lambda t: fn.logsigmoid(t["logits"]),
        "batch_norm_eval": lambda t: fn.batch_norm(t["logits"], t["b"], t["b"].abs() + 0.5,
                                                   training=False),
    }


def _inputs(lib, low_logits, dtype_of):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 8)), "w": rng.standard_normal((6, 8)),
              "b": rng.standard_normal(6), "logits": rng.standard_normal((4, 6)),
              "logits2": rng.standard_normal((4, 6))}
    out = {k: lib.tensor(v.astype(np.float32)) for k, v in arrays.items()}
    if low_logits is not None:  # an activation that is already low precision
        out["logits"] = out["logits"].to(dtype_of(low_logits))
        out["logits2"] = out["logits2"].to(dtype_of(low_logits))
    out["target"] = lib.tensor([0, 5, 2, 1])
    return out


def _torch_dtype_name(t):
    return str(t.dtype).replace("torch.", "")


@pytest.mark.torch
@pytest.mark.parametrize("low", ["bfloat16", "float16"])
@pytest.mark.parametrize("logits", [None, "low"])
@pytest.mark.parametrize("op", sorted(_cases(mg, F)))
def test_cpu_output_dtypes_match_torch(op, low, logits):
    torch = pytest.importorskip("torch")
    if low == "bfloat16":
        _needs_bfloat16()
    tF = torch.nn.functional
    low_logits = None if logits is None else low
    got_inputs = _inputs(mg, low_logits, lambda name: getattr(mg, name))
    want_inputs = _inputs(torch, low_logits, lambda name: getattr(torch, name))
    with mg.autocast("cpu", dtype=getattr(mg, low)):
        got = _cases(mg, F)[op](got_inputs)
    with torch.autocast("cpu", dtype=getattr(torch, low)):
        want = _cases(torch, tF)[op](want_inputs)
    assert got.dtype.name == _torch_dtype_name(want)


def test_default_dtypes_and_float64_untouched():
    _needs_bfloat16()
    assert mg.autocast("cpu").fast_dtype == mg.bfloat16
    assert mg.autocast("cuda").fast_dtype == mg.float16
    a = mg.ones(2, 3, dtype=mg.float64)
    with mg.autocast("cpu"):
        assert (a @ a.t()).dtype == mg.float64
        assert (mg.ones(2, 3) @ mg.ones(3, 2)).dtype == mg.bfloat16
    assert (mg.ones(2, 3) @ mg.ones(3, 2)).dtype == mg.float32  # off again outside


def test_nesting_enabled_false_and_decorator():
    _needs_bfloat16()
    x = mg.ones(2, 2)
    with mg.autocast("cpu", dtype=mg.float16):
        with mg.autocast("cpu", enabled=False):
            assert (x @ x).dtype == mg.float32
            assert not mg.amp.is_autocast_enabled("cpu")
        assert (x @ x).dtype == mg.float16
        with mg.autocast("cuda"):  # another device type: the CPU keeps its autocast
            assert (x @ x).dtype == mg.float16

    @mg.autocast("cpu", dtype=mg.bfloat16)
    def product(a):
        return a @ a

    assert product(x).dtype == mg.bfloat16
    assert not mg.amp.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="not supported"):
        mg.autocast("cpu", dtype=mg.float32)


def test_cuda_autocast_leaves_cpu_tensors_alone():
    x = mg.ones(2, 2)
    with mg.autocast("cuda"):
        assert (x @ x).dtype == mg.float32


def test_master_weights_stay_float32_and_get_float32_grads():
    _needs_bfloat16()
    model = mg.nn.Sequential(mg.nn.Linear(8, 16), mg.nn.ReLU(), mg.nn.Linear(16, 3))
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    x, y = mg.randn(5, 8), mg.tensor([0, 1, 2, 1, 0])
    with mg.autocast("cpu"):
        out = model(x)
        loss = F.cross_entropy(out, y)
    assert out.dtype == mg.bfloat16 and loss.dtype == mg.float32
    loss.backward()
    opt.step()
    for p in model.parameters():
        assert p.dtype == mg.float32 and p.grad.dtype == mg.float32
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, mg.Tensor) and value.dtype.kind != "i":
                assert value.dtype == mg.float32


def test_cpu_products_are_float32_products_rounded():
    _needs_bfloat16()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    for low in (mg.float16, mg.bfloat16):
        x, y = mg.tensor(a.astype(np.float32)).to(low), mg.tensor(b.astype(np.float32)).to(low)
        want = (x.data.astype(np.float32) @ y.data.astype(np.float32)).astype(low)
        assert np.array_equal((x @ y).data.view(np.uint16), want.view(np.uint16))
        lin = F.linear(x, y.t())
        assert lin.dtype == low
        assert np.array_equal(lin.data.view(np.uint16), want.view(np.uint16))


def test_bfloat16_dtype_and_scalars():
    _needs_bfloat16()
    assert mg.bfloat16 is mg.dtypes.bfloat16
    x = mg.ones(3).to(mg.bfloat16)
    assert (x * 2.0).dtype == mg.bfloat16
    assert (x + mg.ones(3)).dtype == mg.float32  # promotion as in PyTorch
    x = mg.ones(3).to(mg.bfloat16).requires_grad_()
    (x * x).sum().backward()
    assert x.grad.dtype == mg.bfloat16


def test_bfloat16_missing_package_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "ml_dtypes":
            raise ImportError("no ml_dtypes")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install ml_dtypes"):
        mg.dtypes.load_bfloat16()


@pytest.mark.gpu
@pytest.mark.parametrize("op,want", [
    ("matmul", "float16"), ("linear", "float16"), ("sdpa", "float16"), ("softmax", "float32"),
    ("log_softmax", "float32"), ("layer_norm", "float32"), ("cross_entropy", "float32"),
    ("mse_loss", "float32"), ("softmax_dtype", "float64"), ("add", "float16"),
    ("sum", "float32"), ("sum_dim", "float32"), ("prod", "float32"), ("logsumexp", "float32"),
    ("softmax_method", "float32"), ("exp", "float32"), ("log", "float32"), ("log1p", "float32"),
    ("rsqrt", "float32"), ("pow_scalar", "float32"), ("pow_tensor", "float32"),
    ("cumsum", "float32"), ("cumprod", "float32"), ("norm", "float32"), ("softplus", "float32"),
    ("group_norm", "float32"), ("rms_norm", "float32"), ("cosine_similarity", "float32"),
    ("kl_div", "float32"), ("interpolate", "float32"), ("elu", "float16"), ("mish", "float16"),
    ("logsigmoid", "float16"), ("batch_norm_eval", "float16"),
])
def test_cuda_policy(op, want):
    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    inputs = {k: v.to("cuda") for k, v in _inputs(mg, "float16", lambda n: getattr(mg, n)).items()}
    inputs["x"] = inputs["x"].float()  # float32 operands for the products
    with mg.autocast("cuda"):
        got = _cases(mg, F)[op](inputs)
    assert got.dtype.name == want and got.device.type == "cuda"


@pytest.mark.gpu
def test_cuda_refuses_binary_cross_entropy_as_pytorch():
    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    p = mg.tensor([0.2, 0.7], device="cuda")
    with mg.autocast("cuda"), pytest.raises(RuntimeError, match="binary_cross_entropy_with_logits"):
        F.binary_cross_entropy(p, p)
    assert F.binary_cross_entropy(p, p).dtype == mg.float32  # outside autocast: as before


@pytest.mark.gpu
def test_cuda_float16_training_step():
    if not mg.cuda.is_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    model = mg.nn.Sequential(mg.nn.Linear(8, 16), mg.nn.ReLU(), mg.nn.Linear(16, 3)).to("cuda")
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    scaler = mg.amp.GradScaler("cuda")
    x, y = mg.randn(5, 8, device="cuda"), mg.tensor([0, 1, 2, 1, 0], device="cuda")
    before = [p.detach().clone() for p in model.parameters()]
    with mg.autocast("cuda"):
        out = model(x)
        loss = F.cross_entropy(out, y)
    assert out.dtype == mg.float16 and loss.dtype == mg.float32
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.last_step_skipped is False
    for p, b in zip(model.parameters(), before):
        assert p.dtype == mg.float32 and p.grad.dtype == mg.float32
        assert not np.array_equal(mg.backend.to_device(p.data, mg.backend.CPU),
                                  mg.backend.to_device(b.data, mg.backend.CPU))


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:CUDA is not available")  # PyTorch without a GPU
@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
@pytest.mark.parametrize("self_low", [False, True])
@pytest.mark.parametrize("op", ["add_", "sub_", "mul_", "div_", "copy_", "clamp_"])
def test_in_place_ops_keep_their_dtype_as_torch(op, self_low, device_type):
    """In-place ops are on no autocast list: the tensor written keeps its dtype (PyTorch's
    autocast for CUDA is compared on CPU tensors, which it leaves alone as minigrad does)."""
    torch = pytest.importorskip("torch")

    def run(lib):
        a = lib.tensor(np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3))
        b = lib.tensor(np.full((2, 3), 2.0, dtype=np.float32)).to(lib.float16)
        if self_low:
            a = a.to(lib.float16)
        with lib.autocast(device_type, dtype=lib.float16):
            out = a.clamp_(min=2.0) if op == "clamp_" else getattr(a, op)(b)
        assert out is a
        return str(a.dtype).replace("torch.", ""), a.float().tolist()

    got, want = run(mg), run(torch)
    assert got == want
