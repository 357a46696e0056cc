"""Convolutions and padding: F.conv1d/conv2d/conv_transpose1d/conv_transpose2d, F.pad and the
nn.Conv* layers: gradcheck (float64) for every option on both paths, double backward, parity
with PyTorch over a hypothesis grid, state dicts both ways, initialisation and error messages."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from helpers import check_module_parity

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.autograd import gradcheck, gradgradcheck

PATHS = [pytest.param(True, id="fused"), pytest.param(False, id="composite")]


def npy(t):
    return mg.backend.to_device(t.detach().data, mg.backend.CPU)


def _t(shape, seed=0, requires_grad=True, device="cpu", dtype=mg.float64):
    a = np.random.default_rng(seed).standard_normal(shape)
    return mg.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)


# ---------------------------------------------------------------------------- gradcheck

CONV2D_OPTIONS = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 1), padding=(1, 2)),
    dict(padding=1, dilation=2),
    dict(padding="same", dilation=(1, 2)),
    dict(padding="valid", stride=3),
    dict(groups=2),
    dict(groups=4, padding=1),  # depthwise (4 in, 4 out)
]


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("options", CONV2D_OPTIONS, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_gradcheck(fused, options, bias):
    groups = options.get("groups", 1)
    x = _t((2, 4, 6, 5), 0)
    w = _t((4, 4 // groups, 3, 2), 1)
    b = _t((4,), 2) if bias else None
    with mg.use_fused(fused):
        assert gradcheck(lambda x, w, *b: F.conv2d(x, w, *b, **options), [x, w] + ([b] if bias
                                                                                  else []))


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(padding="same"),
                                     dict(dilation=2, groups=2, padding=2)], ids=str)
def test_conv1d_gradcheck_unbatched_too(fused, options):
    groups = options.get("groups", 1)
    w, b = _t((6, 4 // groups, 3), 1), _t((6,), 2)
    with mg.use_fused(fused):
        assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, **options), [_t((2, 4, 7)), w, b])
        assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, **options), [_t((4, 7)), w, b])


TRANSPOSED_OPTIONS = [
    dict(),
    dict(stride=2),
    dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2)),
    dict(dilation=2, padding=1),
    dict(groups=2, stride=2, output_padding=1),
]


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("options", TRANSPOSED_OPTIONS, ids=str)
def test_conv_transpose2d_gradcheck(fused, options):
    groups = options.get("groups", 1)
    x, w, b = _t((2, 4, 4, 3)), _t((4, 6 // groups, 3, 2), 1), _t((6,), 2)
    with mg.use_fused(fused):
        assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **options), [x, w, b])
        assert gradcheck(lambda x, w: F.conv_transpose2d(x, w, **options), [x[0].detach()
                                                                             .requires_grad_(), w])


@pytest.mark.parametrize("fused", PATHS)
def test_conv_transpose1d_gradcheck(fused):
    x, w, b = _t((2, 4, 5)), _t((4, 3, 3), 1), _t((3,), 2)
    with mg.use_fused(fused):
        assert gradcheck(lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1,
                                                            output_padding=1), [x, w, b])


@pytest.mark.parametrize("fused", PATHS)
def test_double_backward(fused):
    """The backward is itself differentiable (the fused kernel differentiates its reference)."""
    x, w, b = _t((1, 2, 5, 4)), _t((4, 1, 3, 2), 1), _t((4,), 2)
    xt, wt = _t((1, 2, 3, 3)), _t((2, 2, 2, 2), 1)
    with mg.use_fused(fused):
        assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
                             [x, w, b])
        assert gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1),
                             [xt, wt])
        assert gradgradcheck(lambda x, w: F.conv1d(x, w, padding="same"),
                             [_t((1, 2, 5)), _t((3, 2, 3), 1)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    pads = (2, 1, 0, 3) if mode != "constant" else (2, -1, 1, 3)
    assert gradcheck(lambda x: F.pad(x, pads, mode=mode), [_t((2, 3, 4, 5))])
    assert gradgradcheck(lambda x: F.pad(x, pads[:2], mode=mode) ** 2, [_t((2, 5))])


# ---------------------------------------------------------------------------- PyTorch parity


def _assert_parity(torch, ours, theirs, inputs, rtol=1e-9, atol=1e-10):
    """Outputs and the gradients of sum(g * y) of every input agree."""
    ms = [mg.tensor(a, requires_grad=True) for a in inputs]
    ts = [torch.tensor(a, requires_grad=True) for a in inputs]
    ym, yt = ours(*ms), theirs(*ts)
    assert ym.shape == tuple(yt.shape)
    np.testing.assert_allclose(npy(ym), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(5).standard_normal(yt.shape)
    ym.backward(mg.tensor(g))
    yt.backward(torch.tensor(g))
    for m, t in zip(ms, ts):
        np.testing.assert_allclose(npy(m.grad), t.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), groups=st.sampled_from([1, 2, 3]), cin_g=st.integers(1, 2),
       cout_g=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7),
       kh=st.integers(1, 3), kw=st.integers(1, 3), sh=st.integers(1, 3), sw=st.integers(1, 3),
       ph=st.integers(0, 2), pw=st.integers(0, 2), dh=st.integers(1, 2), dw=st.integers(1, 2),
       bias=st.booleans(), fused=st.booleans(), same=st.booleans())
def test_conv2d_matches_torch(n, groups, cin_g, cout_g, h, w, kh, kw, sh, sw, ph, pw, dh, dw,
                              bias, fused, same):
    torch = pytest.importorskip("torch")
    padding = "same" if same else (ph, pw)
    if same:
        sh = sw = 1
    ph_eff = dh * (kh - 1) if same else 2 * ph
    pw_eff = dw * (kw - 1) if same else 2 * pw
    if h + ph_eff < dh * (kh - 1) + 1 or w + pw_eff < dw * (kw - 1) + 1:
        return  # kernel larger than the padded input: tested among the errors
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((n, cin_g * groups, h, w)),
              rng.standard_normal((cout_g * groups, cin_g, kh, kw))]
    if bias:
        inputs.append(rng.standard_normal(cout_g * groups))
    kwargs = dict(stride=(sh, sw), padding=padding, dilation=(dh, dw), groups=groups)
    with mg.use_fused(fused):
        _assert_parity(torch, lambda *a: F.conv2d(*a, **kwargs),
                       lambda *a: torch.nn.functional.conv2d(*a, **kwargs), inputs)


@pytest.mark.torch
@settings(max_examples=40, deadline=None)
@given(groups=st.sampled_from([1, 2]), cin_g=st.integers(1, 2), cout_g=st.integers(1, 2),
       h=st.integers(1, 5), w=st.integers(1, 5), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
       dh=st.integers(1, 2), dw=st.integers(1, 2), oph=st.integers(0, 2), opw=st.integers(0, 2),
       fused=st.booleans())
def test_conv_transpose2d_matches_torch(groups, cin_g, cout_g, h, w, kh, kw, sh, sw, ph, pw,
                                        dh, dw, oph, opw, fused):
    torch = pytest.importorskip("torch")
    oph, opw = oph % max(sh, dh), opw % max(sw, dw)
    if (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1 <= 0 or \
            (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1 <= 0:
        return
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((2, cin_g * groups, h, w)),
              rng.standard_normal((cin_g * groups, cout_g, kh, kw)),
              rng.standard_normal(cout_g * groups)]
    kwargs = dict(stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw), groups=groups,
                  dilation=(dh, dw))
    with mg.use_fused(fused):
        _assert_parity(torch, lambda *a: F.conv_transpose2d(*a, **kwargs),
                       lambda *a: torch.nn.functional.conv_transpose2d(*a, **kwargs), inputs)


@pytest.mark.torch
@pytest.mark.parametrize("fused", PATHS)
def test_conv1d_and_transpose1d_match_torch(fused):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((3, 4, 11)), rng.standard_normal((6, 2, 3)), \
        rng.standard_normal(6)
    with mg.use_fused(fused):
        for kwargs in (dict(stride=2, padding=1, groups=2), dict(padding="same", dilation=3,
                                                                   groups=2)):
            _assert_parity(torch, lambda *a, k=kwargs: F.conv1d(*a, **k),
                           lambda *a, k=kwargs: torch.nn.functional.conv1d(*a, **k), [x, w, b])
        _assert_parity(torch, lambda *a: F.conv1d(*a), lambda *a: torch.nn.functional.conv1d(*a),
                       [x[0], w[:, :1].repeat(4, axis=1), b])  # unbatched
        kwargs = dict(stride=3, padding=1, output_padding=2, groups=2, dilation=1)
        _assert_parity(torch, lambda *a: F.conv_transpose1d(*a, **kwargs),
                       lambda *a: torch.nn.functional.conv_transpose1d(*a, **kwargs),
                       [x, rng.standard_normal((4, 3, 3)), b[:6]])


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pads", [((2, 5), (2, 3)), ((2, 3, 5), (1, 0)),
                                        ((1, 2, 4, 5), (2, 1, 3, 0)),
                                        ((1, 2, 3, 4, 5), (1, 1, 2, 0, 0, 2))])
def test_pad_matches_torch(mode, shape, pads):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal(shape)
    _assert_parity(torch, lambda t: F.pad(t, pads, mode=mode),
                   lambda t: torch.nn.functional.pad(t, pads, mode=mode), [x])
    if mode == "constant":
        _assert_parity(torch, lambda t: F.pad(t, (1, -2), value=2.5),
                       lambda t: torch.nn.functional.pad(t, (1, -2), value=2.5), [x])


# ---------------------------------------------------------------------------- layers


LAYERS = [
    ("Conv2d", (3, 6, 3), dict(padding=1), (2, 3, 6, 5)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=2, groups=2, bias=False), (2, 4, 7, 6)),
    ("Conv2d", (3, 4, 3), dict(padding="same", padding_mode="reflect", dilation=2), (1, 3, 6, 6)),
    ("Conv2d", (3, 4, 3), dict(padding=(1, 2), padding_mode="replicate"), (3, 6, 5)),
    ("Conv2d", (3, 4, 3), dict(padding=2, padding_mode="circular"), (1, 3, 4, 5)),
    ("Conv1d", (4, 4, 5), dict(padding="same", groups=4), (2, 4, 9)),
    ("Conv1d", (2, 3, 3), dict(padding=1, padding_mode="reflect", stride=2), (2, 2, 8)),
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2),
     (2, 4, 3, 4)),
    ("ConvTranspose1d", (3, 2, 4), dict(stride=3, dilation=2, bias=False), (2, 3, 5)),
]


@pytest.mark.torch
@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS, ids=lambda v: str(v))
def test_layers_match_torch_and_state_dicts_load_both_ways(fused, name, args, kwargs, shape):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(*args, **kwargs, dtype=mg.float64)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    x = np.random.default_rng(4).standard_normal(shape)
    with mg.use_fused(fused):
        check_module_parity(torch, ours, theirs, x, tol=dict(rtol=1e-9, atol=1e-10))


@pytest.mark.torch
def test_conv_transpose_output_size_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), \
        torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = np.zeros((1, 2, 4, 4), dtype=np.float32)
    for size in ((7, 7), (8, 8), (1, 3, 8, 7)):
        assert ours(mg.tensor(x), output_size=size).shape == \
            tuple(theirs(torch.tensor(x), output_size=size).shape)
    with pytest.raises(ValueError, match="valid sizes range from 7 to 8"):
        ours(mg.tensor(x), output_size=(9, 9))


@pytest.mark.parametrize("cls,args,fan_in", [
    (nn.Conv2d, (6, 8, (3, 2)), 6 * 3 * 2), (nn.Conv2d, (6, 9, 3, 1, 0, 1, 3), 2 * 9),
    (nn.Conv1d, (4, 5, 7), 4 * 7), (nn.ConvTranspose2d, (6, 8, 3, 1, 0, 0, 2), 4 * 9),
])
def test_default_init_is_kaiming_uniform_with_pytorch_fan_in(cls, args, fan_in):
    mg.manual_seed(0)
    layer = cls(*args)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) and the bias rule
    for p in (layer.weight, layer.bias):
        v = npy(p)
        assert np.all(np.abs(v) <= bound) and np.abs(v).max() > 0.5 * bound
    assert layer.weight.dtype == mg.float32


def test_layers_shapes_unbatched_and_float32():
    conv = nn.Conv2d(3, 4, 3, padding="same")
    assert conv(mg.randn(3, 5, 6)).shape == (4, 5, 6)
    assert conv(mg.randn(2, 3, 5, 6)).dtype == mg.float32
    assert nn.ConvTranspose2d(3, 2, 2, stride=2)(mg.randn(3, 4, 4)).shape == (2, 8, 8)
    assert nn.Conv1d(2, 2, 3, bias=False).bias is None


@pytest.mark.parametrize("fused", PATHS)
def test_float32_gradients_stay_float32(fused):
    x = mg.randn(2, 3, 5, 5, requires_grad=True)
    conv = nn.Conv2d(3, 4, 3, stride=2)
    with mg.use_fused(fused):
        conv(x).sum().backward()
    assert x.grad.dtype == conv.weight.grad.dtype == conv.bias.grad.dtype == mg.float32


# ---------------------------------------------------------------------------- errors


def test_errors_name_expected_and_actual_shapes():
    x = mg.randn(2, 4, 5, 5)
    with pytest.raises(RuntimeError, match=r"Given groups=1, weight of size \[8, 3, 3, 3\], "
                       r"expected input\[2, 4, 5, 5\] to have 3 channels, but got 4 channels"):
        F.conv2d(x, mg.randn(8, 3, 3, 3))
    with pytest.raises(RuntimeError, match=r"Calculated padded input size per channel: "
                       r"\(5 x 5\). Kernel size: \(6 x 6\). Kernel size can't be greater"):
        F.conv2d(x, mg.randn(8, 4, 6, 6))
    with pytest.raises(RuntimeError, match=r"\(5 x 5\). Kernel size: \(7 x 5\)"):
        F.conv2d(x, mg.randn(8, 4, 4, 3), dilation=2)
    with pytest.raises(RuntimeError, match=r"Given groups=3, expected weight to be divisible "
                       r"by 3 at dimension 0, but got weight of size \[8, 2, 3, 3\]"):
        F.conv2d(x, mg.randn(8, 2, 3, 3), groups=3)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        F.conv2d(x, mg.randn(8, 4, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(4, 8, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        F.conv1d(mg.randn(1, 4, 5), mg.randn(8, 4, 3), padding="full")
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input "
                       r"to conv2d, but got input of size: \[4, 5\]"):
        F.conv2d(mg.randn(4, 5), mg.randn(8, 4, 3, 3))
    with pytest.raises(RuntimeError, match=r"expected bias to be 1-dimensional with 8 elements, "
                       r"but got bias of size \[4\]"):
        F.conv2d(x, mg.randn(8, 4, 3, 3), mg.randn(4))
    with pytest.raises(RuntimeError, match=r"Given transposed=1, weight of size \[3, 2, 3, 3\], "
                       r"expected input\[2, 4, 5, 5\] to have 3 channels, but got 4"):
        F.conv_transpose2d(x, mg.randn(3, 2, 3, 3))
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride"):
        F.conv_transpose2d(x, mg.randn(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(5, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 5, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        nn.ConvTranspose2d(4, 5, 3, padding_mode="reflect")
    with pytest.raises(RuntimeError, match="the same dtype"):
        F.conv2d(x, mg.randn(8, 4, 3, 3, dtype=mg.float64))


def test_pad_errors():
    x = mg.randn(1, 2, 3)
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(RuntimeError, match=r"padding \(3, 3\) at dimension 2 of input "
                       r"\[1, 2, 3\]"):
        F.pad(x, (3, 3), mode="reflect")
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        F.pad(x, (4, 0), mode="circular")
    with pytest.raises(NotImplementedError, match="Padding size 2 is not supported for 4D "
                       "input tensor"):
        F.pad(mg.randn(1, 1, 4, 5), (1, 2), mode="circular")
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(RuntimeError, match="doesn't take in value"):
        F.pad(x, (1, 1), mode="replicate", value=2.0)


@pytest.mark.parametrize("fused", PATHS)
def test_autocast_runs_convolutions_in_the_low_dtype(fused):
    """Convolutions are on autocast's lower-precision list (PyTorch's CPU default: bfloat16);
    the gradients reach the float32 leaves as float32."""
    x = mg.randn(2, 3, 6, 6, requires_grad=True)
    w, wt = mg.randn(4, 3, 3, 3, requires_grad=True), mg.randn(3, 2, 2, 2)
    with mg.use_fused(fused), mg.autocast("cpu"):
        y = F.conv2d(x, w, padding=1)
        yt = F.conv_transpose2d(x, wt, stride=2)
        y1 = F.conv1d(x[:, :, 0], w[:, :, 0])
    assert y.dtype == yt.dtype == y1.dtype == mg.bfloat16
    with mg.use_fused(fused):
        y.float().sum().backward()
    assert x.grad.dtype == w.grad.dtype == mg.float32


@pytest.mark.torch
def test_autocast_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    with mg.autocast("cpu"):
        ours = F.conv2d(mg.tensor(x), mg.tensor(w), padding=1)
    with torch.autocast("cpu"):
        theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=1)
    assert str(theirs.dtype) == "torch.bfloat16"
    np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())


@pytest.mark.parametrize("fused", PATHS)
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_layer_gradcheck_every_padding_mode(fused, padding_mode):
    conv = nn.Conv2d(2, 3, (3, 2), padding=(1, 2), stride=(2, 1), padding_mode=padding_mode,
                     dtype=mg.float64)
    x = _t((2, 2, 5, 4))
    with mg.use_fused(fused):
        assert gradcheck(lambda x, w, b: F.conv2d(
            F.pad(x, conv._reversed_padding_repeated_twice,
                  mode="constant" if padding_mode == "zeros" else padding_mode),
            w, b, conv.stride), [x, conv.weight, conv.bias])
        assert gradcheck(lambda x: conv(x), [x])


@pytest.mark.parametrize("fused", PATHS)
def test_conv_transpose2d_output_all_padding_gives_zero_input_gradient(fused):
    # stride 3, padding 1, output_padding 2 on a 1x1 input: the one output row lies in the
    # output padding, so it is the bias alone; the input still gets its (zero) gradient, as
    # in PyTorch, not None (the composite's crop-everything pad once cut it off the graph)
    x, w = _t((1, 1, 1, 1)), _t((1, 1, 1, 1), seed=1)
    b = _t((1,), seed=2)
    with mg.use_fused(fused):
        y = F.conv_transpose2d(x, w, b, stride=(3, 1), padding=(1, 0), output_padding=(2, 0))
        assert y.shape == (1, 1, 1, 1)
        y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), np.zeros((1, 1, 1, 1)))
    np.testing.assert_array_equal(npy(w.grad), np.zeros((1, 1, 1, 1)))
    np.testing.assert_array_equal(npy(b.grad), np.ones(1))


def test_pad_cropping_everything_stays_in_the_graph():
    x = _t((2, 3))
    y = F.pad(x, (-2, 1, 0, 0))  # the last column kept, one zero added
    z = F.pad(x, (-3, 2))  # every column cropped, two zeros added
    assert z.shape == (2, 2) and z.requires_grad
    (y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(npy(x.grad), [[0, 0, 1], [0, 0, 1]])
