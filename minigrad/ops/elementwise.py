"""Elementwise primitives: arithmetic, unary maths, activations, comparisons, casts.

Binary ops broadcast like NumPy; the engine reduces a broadcast gradient back to the input's
shape (``sum_to``), so the backward formulas below are written as if shapes were equal.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np

from minigrad import autocast_state, backend, dtypes
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import Function
from minigrad.tensor import Tensor

Scalar = Union[int, float, bool]


# ---------------------------------------------------------------------------- helpers


def lift(value, like: Tensor) -> Tensor:
    """A Python scalar or array as a constant tensor beside ``like``.

    NOTE: a Python scalar keeps the tensor's dtype (``x * 2.0`` stays float32); a float scalar
    with an integer tensor gives the default float dtype, as in PyTorch.
    """
    if isinstance(value, Tensor):
        return value
    xp = like.xp
    dt = like.data.dtype
    if isinstance(value, (bool, np.bool_)):
        out_dt = dt
    elif isinstance(value, (int, np.integer)):
        out_dt = dt if dt.kind != "b" else dtypes.int64
    elif isinstance(value, (float, np.floating)):
        out_dt = dt if dt.kind in "fV" else dtypes.float32  # (V: bfloat16)
    else:
        arr = xp.asarray(value)
        return Tensor._make(arr if arr.dtype.kind != "f" or dt.kind != "f" else arr.astype(dt))
    return Tensor._make(xp.asarray(value, dtype=out_dt))


def binary_operands(a, b):
    """Turn the operands of a binary op into two tensors of one dtype (PyTorch promotion)."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError("at least one operand must be a Tensor")
        a = lift(a, b)
    elif not isinstance(b, Tensor):
        b = lift(b, a)
    da, db = a.data.dtype, b.data.dtype
    if da != db:
        # NOTE: a bool operand is left as it is: the array maths promotes it to the other
        # dtype in the same pass (gy * (x > 0) makes no float copy of the mask)
        dt = dtypes.result_type(da, db)
        if da != dt and da.kind != "b":
            a = cast(a, dt)
        if db != dt and db.kind != "b":
            b = cast(b, dt)
    return a, b


def _output(fn: Function, i: int = 0):
    """Output ``i`` of ``fn`` as a tensor in the graph (for backward formulas that reuse y).

    NOTE: the output tensor may already be gone (its consumers were freed earlier in this
    backward pass); then it is rebuilt from the saved array and linked to ``fn`` again, so a
    graph recorded with create_graph=True still reaches the inputs through it.
    """
    out = fn.outputs[i]()
    if out is None:
        out = Tensor._make(fn.saved_outputs[i], requires_grad=True)
        out.grad_fn = fn
        out._out_index = i
    return out


# ---------------------------------------------------------------------------- arithmetic


class AddFn(Function):
    """y = a + b;  ga = gy, gb = gy."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy, gy


class SubFn(Function):
    """y = a - b;  ga = gy, gb = -gy."""

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        return gy, (-gy if self.needs_input_grad[1] else None)


class MulFn(Function):
    """y = a * b;  ga = gy * b, gb = gy * a."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy * b if self.needs_input_grad[0] else None
        gb = gy * a if self.needs_input_grad[1] else None
        return ga, gb


class DivFn(Function):
    """y = a / b;  ga = gy / b, gb = -gy * a / b**2."""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy / b if self.needs_input_grad[0] else None
        gb = -gy * a / (b * b) if self.needs_input_grad[1] else None
        return ga, gb


class PowFn(Function):
    """y = a ** b;  ga = gy * b * a**(b-1), gb = gy * y * log(a)."""

    save_outputs = True

    def forward(self, a, b):
        return a**b

    def backward(self, gy):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gy * b * a ** (b - 1)
        if self.needs_input_grad[1]:
            # NOTE: log(a) is -inf/nan for a <= 0; PyTorch gives 0 where a == 0 and b >= 0
            safe = where(a.detach() > 0, a, ones_like_const(a))
            ga_b = gy * _output(self) * log(safe)
            gb = where(a.detach() > 0, ga_b, zeros_like_const(ga_b))
        return ga, gb


def ones_like_const(t: Tensor) -> Tensor:
    """A tensor of ones with ``t``'s shape, dtype and device, outside the graph."""
    return Tensor._make(t.xp.ones(t.shape, dtype=t.dtype))


def zeros_like_const(t: Tensor) -> Tensor:
    """A tensor of zeros with ``t``'s shape, dtype and device, outside the graph."""
    return Tensor._make(t.xp.zeros(t.shape, dtype=t.dtype))


def add(a, b, alpha=1) -> Tensor:
    """a + alpha * b, broadcasting."""
    a, b = binary_operands(a, b)
    return AddFn.apply(a, b if alpha == 1 else mul(b, alpha))


def sub(a, b, alpha=1) -> Tensor:
    """a - alpha * b, broadcasting."""
    a, b = binary_operands(a, b)
    return SubFn.apply(a, b if alpha == 1 else mul(b, alpha))


def mul(a, b) -> Tensor:
    """a * b, broadcasting."""
    return MulFn.apply(*binary_operands(a, b))


def div(a, b) -> Tensor:
    """a / b, broadcasting (true division: integers give float32)."""
    a, b = binary_operands(a, b)
    if a.dtype.kind not in "fV":  # (V: bfloat16)
        a, b = cast(a, dtypes.float32), cast(b, dtypes.float32)
    return DivFn.apply(a, b)


def pow(a, b) -> Tensor:  # noqa: A001
    """a ** b, broadcasting."""
    if _autocast.on:  # on CUDA autocast's float32 list
        a, b = autocast_state.fp32_cuda(a, b)
    return PowFn.apply(*binary_operands(a, b))


class NegFn(Function):
    """y = -x;  gx = -gy."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


def neg(x: Tensor) -> Tensor:
    """Elementwise negation, ``-x``."""
    return NegFn.apply(x)


# ---------------------------------------------------------------------------- unary maths


class ExpFn(Function):
    """y = exp(x);  gx = gy * y."""

    save_outputs = True
    keeps_inputs = False

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, gy):
        return gy * _output(self)


class LogFn(Function):
    """y = log(x);  gx = gy / x."""

    def forward(self, x):
        return self.xp.log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Log1pFn(Function):
    """y = log(1 + x);  gx = gy / (1 + x).  A primitive for accuracy near x = 0."""

    def forward(self, x):
        return self.xp.log1p(x)

    def backward(self, gy):
        return gy / (self.inputs[0] + 1)


class SqrtFn(Function):
    """y = sqrt(x);  gx = gy / (2 y)."""

    save_outputs = True

    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, gy):
        return gy / (_output(self) * 2)


class SinFn(Function):
    """y = sin(x);  gx = gy * cos(x)."""

    def forward(self, x):
        return self.xp.sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])


class CosFn(Function):
    """y = cos(x);  gx = -gy * sin(x)."""

    def forward(self, x):
        return self.xp.cos(x)

    def backward(self, gy):
        return -gy * sin(self.inputs[0])


class TanhFn(Function):
    """y = tanh(x);  gx = gy * (1 - y**2)."""

    save_outputs = True
    keeps_inputs = False

    def forward(self, x):
        return self.xp.tanh(x)

    def backward(self, gy):
        return TanhBackwardFn.apply(gy, _output(self))


class TanhBackwardFn(Function):
    """gx = gy * (1 - y**2), tanh's gradient from its output, as one node (PyTorch's
    ``tanh_backward``: one node in place of three in every backward, the same numbers);
    its own gradients, for double backward: g_gy = g * (1 - y**2), g_y = -2 g gy y."""

    def forward(self, gy, y):
        if y.ndim == 0 or gy.shape != y.shape or gy.dtype != y.dtype:
            return gy * (1 - y * y)  # (0-d: NumPy's products are scalars, no out=)
        t = y * y
        self.xp.subtract(1, t, out=t)
        return self.xp.multiply(gy, t, out=t)

    def backward(self, g):
        gy, y = self.inputs
        g_gy = g * (1 - y * y) if self.needs_input_grad[0] else None
        g_y = g * gy * y * -2 if self.needs_input_grad[1] else None
        return g_gy, g_y


class SigmoidFn(Function):
    """y = 1 / (1 + exp(-x));  gx = gy * y * (1 - y)."""

    save_outputs = True
    keeps_inputs = False

    def forward(self, x):
        xp = self.xp
        # NOTE: exp(-x) overflows for x << 0; tanh form is stable everywhere
        half = x.dtype.type(0.5)
        if x.ndim == 0:  # (NumPy's 0-d products are scalars, no out=)
            return (xp.tanh(x * half) + 1) * half
        y = x * half  # the same three steps in one buffer (no temporary per step)
        xp.tanh(y, out=y)
        y += 1
        y *= half
        return y

    def backward(self, gy):
        return SigmoidBackwardFn.apply(gy, _output(self))


class SigmoidBackwardFn(Function):
    """gx = gy * y * (1 - y), the sigmoid's gradient from its output, as one node (PyTorch's
    ``sigmoid_backward``: one node in place of three in every backward, the same numbers);
    its own gradients, for double backward: g_gy = g * y * (1 - y), g_y = g * gy * (1 - 2y)."""

    def forward(self, gy, y):
        if y.ndim == 0 or gy.shape != y.shape or gy.dtype != y.dtype:
            return gy * y * (1 - y)  # (0-d: NumPy's products are scalars, no out=)
        out = gy * y
        return self.xp.multiply(out, 1 - y, out=out)

    def backward(self, g):
        gy, y = self.inputs
        g_gy = g * y * (1 - y) if self.needs_input_grad[0] else None
        g_y = g * gy * (1 - 2 * y) if self.needs_input_grad[1] else None
        return g_gy, g_y


class ReluFn(Function):
    """y = max(x, 0);  gx = gy * (y > 0) (y > 0 exactly where x > 0)."""

    save_outputs = True
    keeps_inputs = False  # from its output, as PyTorch's threshold_backward: x can be freed

    def forward(self, x):
        return self.xp.maximum(x, 0)

    def backward(self, gy):
        return ReluBackwardFn.apply(gy, _output(self))


class ReluBackwardFn(Function):
    """gx = gy * (y > 0), ReLU's gradient from its output, as one node (PyTorch's
    ``threshold_backward``, as :class:`SigmoidBackwardFn` and :class:`TanhBackwardFn` are for
    theirs: one node in place of a comparison and a product, the same numbers); its own
    gradients, for double backward: g_gy = g * (y > 0), and none for y (the mask is piecewise
    constant). NOTE: the subgradient at 0 is 0, as in PyTorch."""

    def forward(self, gy, y):
        return gy * (y > 0)

    def backward(self, g):
        gy, y = self.inputs
        return (ReluBackwardFn.apply(g, y) if self.needs_input_grad[0] else None), None


class AbsFn(Function):
    """y = |x|;  gx = gy * sign(x)."""

    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, gy):
        (x,) = self.inputs
        # NOTE: sign(0) = 0, PyTorch's subgradient at the kink
        return gy * sign(x)


class SignFn(Function):
    """y = sign(x);  gx = 0 (flat almost everywhere; a zero gradient, as PyTorch's, so a graph
    through sign still reaches the other inputs)."""

    def forward(self, x):
        return self.xp.sign(x)

    def backward(self, gy):
        return gy * 0


class ClampFn(Function):
    """y = min(max(x, lo), hi);  gx = gy where lo <= x <= hi, else 0."""

    def forward(self, x, lo=None, hi=None):
        self.lo, self.hi = lo, hi
        return self.xp.clip(x, lo, hi)

    def backward(self, gy):
        x = self.inputs[0].data
        inside = self.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return gy * Tensor._make(inside.astype(gy.dtype))


def exp(x: Tensor) -> Tensor:
    """Elementwise e**x."""
    if _autocast.on:  # on CUDA autocast's float32 list
        x, = autocast_state.fp32_cuda(x)
    return ExpFn.apply(x)


def log(x: Tensor) -> Tensor:
    """Elementwise natural logarithm."""
    if _autocast.on:  # on CUDA autocast's float32 list
        x, = autocast_state.fp32_cuda(x)
    return LogFn.apply(x)


def log1p(x: Tensor) -> Tensor:
    """Elementwise log(1 + x), accurate for small x."""
    if _autocast.on:  # on CUDA autocast's float32 list
        x, = autocast_state.fp32_cuda(x)
    return Log1pFn.apply(x)


def sqrt(x: Tensor) -> Tensor:
    """Elementwise square root."""
    return SqrtFn.apply(x)


def rsqrt(x: Tensor) -> Tensor:
    """Elementwise 1 / sqrt(x)."""
    if _autocast.on:  # on CUDA autocast's float32 list
        x, = autocast_state.fp32_cuda(x)
    return 1 / sqrt(x)


def square(x: Tensor) -> Tensor:
    """Elementwise x * x."""
    return x * x


def sin(x: Tensor) -> Tensor:
    """Elementwise sine."""
    return SinFn.apply(x)


def cos(x: Tensor) -> Tensor:
    """Elementwise cosine."""
    return CosFn.apply(x)


def tanh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return TanhFn.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """Elementwise logistic function 1 / (1 + e**-x)."""
    return SigmoidFn.apply(x)


def relu(x: Tensor) -> Tensor:
    """Elementwise max(x, 0)."""
    return ReluFn.apply(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001
    """Elementwise absolute value."""
    return AbsFn.apply(x)


def sign(x: Tensor) -> Tensor:
    """Elementwise sign (-1, 0 or 1); not differentiable."""
    return SignFn.apply(x)


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit values to ``[min, max]`` (either may be None)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    return ClampFn.apply(x, lo=min, hi=max)


clip = clamp


# ---------------------------------------------------------------------------- GELU


# Rational approximations of erf (Cephes ndtr.c coefficients; relative error ~1e-14), written
# with array ops so that GELU needs neither SciPy nor per-element Python.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)


def _polyval(coeffs, z):
    acc = z * 0 + coeffs[0]
    for c in coeffs[1:]:
        acc = acc * z + c
    return acc


def erf_array(xp, x):
    """erf(x) on a backend array, in x's dtype (float16 is computed in float32)."""
    work = x.astype(np.float32) if x.dtype == np.float16 else x
    z = work * work
    out = work * _polyval(_ERF_T, z) / _polyval(_ERF_U, z)  # exact enough for |x| < 1
    # |x| >= 1: erf = sign(x) (1 - erfc(|x|)), erfc(a) = exp(-a^2) P(a) / Q(a); erf(6) == 1.0.
    # NOTE: only those elements pay for the longer formula (about a third of N(0, 2) inputs).
    large = xp.abs(work) >= 1
    if large.any():
        v = work[large]
        a = xp.minimum(xp.abs(v), 6.0)
        erfc = xp.exp(-a * a) * _polyval(_ERFC_P, a) / _polyval(_ERFC_Q, a)
        out[large] = xp.sign(v) * (1 - erfc)
    return out.astype(x.dtype, copy=False)


class GeluFn(Function):
    """y = x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;  gx = gy * (Phi(x) + x * phi(x)).

    ``approximate='tanh'``: y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x**3);
    gx = gy * (1/2 (1 + tanh u) + x/2 (1 - tanh(u)**2) sqrt(2/pi) (1 + 3 * 0.044715 x**2)).
    A primitive because erf is not an op of its own.
    """

    def forward(self, x, approximate="none"):
        self.approximate = approximate
        xp = self.xp
        half = x.dtype.type(0.5)
        if approximate == "tanh":
            u = x.dtype.type(math.sqrt(2 / math.pi)) * (x + x.dtype.type(0.044715) * x**3)
            return half * x * (1 + xp.tanh(u))
        return half * x * (1 + erf_array(xp, x * x.dtype.type(1 / math.sqrt(2))))

    def backward(self, gy):
        (x,) = self.inputs
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = tanh(k * (x + 0.044715 * x * x * x))
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
            return gy * d
        cdf = _NormalCdfFn.apply(x)  # differentiable, for double backward: Phi' = phi
        pdf = exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return gy * (cdf + x * pdf)


class _NormalCdfFn(Function):
    """y = Phi(x) (standard normal CDF);  gx = gy * phi(x).  Only used by GELU's backward."""

    def forward(self, x):
        return (1 + erf_array(self.xp, x * x.dtype.type(1 / math.sqrt(2)))) * x.dtype.type(0.5)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit, exact (``'none'``) or with the ``'tanh'`` approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GeluFn.apply(x, approximate=approximate)


def erf(x: Tensor) -> Tensor:
    """The error function; gradient 2/sqrt(pi) exp(-x**2)."""
    return _NormalCdfFn.apply(x * math.sqrt(2)) * 2 - 1


# ---------------------------------------------------------------------------- min / max / where


class MaximumFn(Function):
    """y = max(a, b);  ga = gy where a > b (half at ties), gb = the rest."""

    def forward(self, a, b):
        return self.xp.maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        # NOTE: at ties PyTorch splits the gradient evenly between the two inputs
        wa = (a.data > b.data) + (a.data == b.data) * 0.5
        wa = Tensor._make(self.xp.asarray(wa, dtype=gy.dtype))
        return gy * wa, gy * (1 - wa)


class MinimumFn(Function):
    """y = min(a, b);  ga = gy where a < b (half at ties), gb = the rest."""

    def forward(self, a, b):
        return self.xp.minimum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        wa = (a.data < b.data) + (a.data == b.data) * 0.5
        wa = Tensor._make(self.xp.asarray(wa, dtype=gy.dtype))
        return gy * wa, gy * (1 - wa)


class WhereFn(Function):
    """y = cond ? a : b;  ga = gy where cond, gb = gy where not cond (cond has no gradient)."""

    def forward(self, cond, a, b):
        return self.xp.where(cond, a, b)

    def backward(self, gy):
        cond = self.inputs[0]
        zero = Tensor._make(self.xp.zeros((), dtype=gy.dtype))
        ga = where(cond, gy, zero) if self.needs_input_grad[1] else None
        gb = where(cond, zero, gy) if self.needs_input_grad[2] else None
        return None, ga, gb


def maximum(a, b) -> Tensor:
    """Elementwise maximum of two tensors."""
    return MaximumFn.apply(*binary_operands(a, b))


def minimum(a, b) -> Tensor:
    """Elementwise minimum of two tensors."""
    return MinimumFn.apply(*binary_operands(a, b))


def where(condition, input, other) -> Tensor:  # noqa: A002
    """``input`` where ``condition`` is true, else ``other`` (scalars allowed)."""
    if not isinstance(condition, Tensor):
        ref = input if isinstance(input, Tensor) else other
        condition = Tensor._make(ref.xp.asarray(condition, dtype=bool))
    elif condition.dtype != np.bool_:
        condition = Tensor._make(condition.data.astype(bool))
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = Tensor._make(condition.xp.asarray(input, dtype=np.float32))
    a, b = binary_operands(input, other)
    return WhereFn.apply(condition, a, b)


# ---------------------------------------------------------------------------- comparisons and logic


class _BoolBinaryFn(Function):
    """y = ufunc(a, b), a bool tensor (comparisons and logical ops); no gradient."""

    differentiable = False
    ufunc = ""

    def forward(self, a, b):
        return getattr(self.xp, self.ufunc)(a, b)


class EqFn(_BoolBinaryFn):
    """y = (a == b), a bool tensor; no gradient."""
    ufunc = "equal"


class NeFn(_BoolBinaryFn):
    """y = (a != b), a bool tensor; no gradient."""
    ufunc = "not_equal"


class LtFn(_BoolBinaryFn):
    """y = (a < b), a bool tensor; no gradient."""
    ufunc = "less"


class LeFn(_BoolBinaryFn):
    """y = (a <= b), a bool tensor; no gradient."""
    ufunc = "less_equal"


class GtFn(_BoolBinaryFn):
    """y = (a > b), a bool tensor; no gradient."""
    ufunc = "greater"


class GeFn(_BoolBinaryFn):
    """y = (a >= b), a bool tensor; no gradient."""
    ufunc = "greater_equal"


class LogicalAndFn(_BoolBinaryFn):
    """y = a and b, elementwise, a bool tensor; no gradient."""
    ufunc = "logical_and"


class LogicalOrFn(_BoolBinaryFn):
    """y = a or b, elementwise, a bool tensor; no gradient."""
    ufunc = "logical_or"


class LogicalXorFn(_BoolBinaryFn):
    """y = a xor b, elementwise, a bool tensor; no gradient."""
    ufunc = "logical_xor"


class LogicalNotFn(Function):
    """y = (x == 0), a bool tensor, for any dtype; no gradient."""
    differentiable = False

    def forward(self, x):
        return self.xp.logical_not(x)


class BitwiseNotFn(Function):
    """y = ~x: not for a bool tensor, the bitwise inverse for an integer one; no gradient."""
    differentiable = False

    def forward(self, x):
        if x.dtype.kind not in "biu":
            raise TypeError(f"bitwise_not (~) needs a bool or integer tensor, got {x.dtype}; "
                            "use logical_not for a float tensor")
        return self.xp.logical_not(x) if x.dtype == np.bool_ else self.xp.invert(x)


class IsFiniteFn(Function):
    """y = isfinite(x), a bool tensor; no gradient."""
    differentiable = False

    def forward(self, x):
        return self.xp.isfinite(x)


class IsNanFn(Function):
    """y = isnan(x), a bool tensor; no gradient."""
    differentiable = False

    def forward(self, x):
        return self.xp.isnan(x)


def _compare(cls, a, b):
    if isinstance(b, Tensor) and not isinstance(a, Tensor):
        a = lift(a, b)
    elif not isinstance(b, Tensor):
        if b is None or not isinstance(b, (int, float, bool, np.generic, np.ndarray)):
            return NotImplemented
        b = lift(b, a)
    return cls.apply(a, b)


def eq(a, b) -> Tensor:
    """Elementwise ``a == b`` (a bool tensor, no gradient)."""
    return _compare(EqFn, a, b)


def ne(a, b) -> Tensor:
    """Elementwise ``a != b``."""
    return _compare(NeFn, a, b)


def lt(a, b) -> Tensor:
    """Elementwise ``a < b``."""
    return _compare(LtFn, a, b)


def le(a, b) -> Tensor:
    """Elementwise ``a <= b``."""
    return _compare(LeFn, a, b)


def gt(a, b) -> Tensor:
    """Elementwise ``a > b``."""
    return _compare(GtFn, a, b)


def ge(a, b) -> Tensor:
    """Elementwise ``a >= b``."""
    return _compare(GeFn, a, b)


def logical_and(a, b) -> Tensor:
    """Elementwise logical and (nonzero is true), broadcasting; a bool tensor."""
    return _compare(LogicalAndFn, a, b)


def logical_or(a, b) -> Tensor:
    """Elementwise logical or (nonzero is true), broadcasting; a bool tensor."""
    return _compare(LogicalOrFn, a, b)


def logical_xor(a, b) -> Tensor:
    """Elementwise logical exclusive or (nonzero is true), broadcasting; a bool tensor."""
    return _compare(LogicalXorFn, a, b)


def logical_not(x: Tensor) -> Tensor:
    """Elementwise logical not: True where ``x`` is zero (False), a bool tensor whatever the
    dtype of ``x``, as ``torch.logical_not``."""
    return LogicalNotFn.apply(x)


def bitwise_not(x: Tensor) -> Tensor:
    """``~x``: logical not of a bool tensor, the bitwise inverse of an integer one (a float
    tensor raises ``TypeError``), as ``torch.bitwise_not``."""
    return BitwiseNotFn.apply(x)


def isfinite(x: Tensor) -> Tensor:
    """True where ``x`` is neither infinite nor NaN; a bool tensor."""
    return IsFiniteFn.apply(x)


def isnan(x: Tensor) -> Tensor:
    """True where ``x`` is NaN; a bool tensor."""
    return IsNanFn.apply(x)


# ---------------------------------------------------------------------------- casts, copies


class CastFn(Function):
    """y = x as another dtype;  gx = gy cast back."""

    def forward(self, x, dtype=None):
        return x.astype(dtype)

    def backward(self, gy):
        return cast(gy, self.inputs[0].dtype)


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` as ``dtype`` (the same tensor when it already is)."""
    dtype = np.dtype(dtype)
    if x.data.dtype == dtype:
        return x
    return CastFn.apply(x, dtype=dtype)


class CloneFn(Function):
    """y = copy of x;  gx = gy."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def clone(x: Tensor) -> Tensor:
    """A copy of x that stays in the graph."""
    return CloneFn.apply(x)


class ToDeviceFn(Function):
    """y = x copied to another device;  gx = gy copied back."""

    def forward(self, x, device=None):
        return backend.to_device(x, device)

    def backward(self, gy):
        return to_device(gy, self.inputs[0].device)


def to_device(x: Tensor, device) -> Tensor:
    """``x`` on ``device`` (the same tensor when it is there already)."""
    if x.device == device:
        return x
    return ToDeviceFn.apply(x, device=device)
