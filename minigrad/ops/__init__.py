"""Differentiable primitives (one ``Function`` each) and the composites built on them.

Everything here is also a Tensor method where PyTorch has one (``mg.exp(x)`` and ``x.exp()``).
"""

from minigrad.ops.elementwise import (  # noqa: F401
    abs, add, cast, clamp, clip, clone, cos, div, eq, erf, exp, ge, gelu, gt, isfinite, isnan,
    le, lift, log, log1p, logical_and, logical_not, logical_or, logical_xor, lt, maximum,
    minimum, mul, ne, neg, pow, relu, rsqrt, sigmoid, sign, sin, sqrt, square, sub, tanh,
    to_device, where,
)
from minigrad.ops.indexing import (  # noqa: F401
    gather, getitem, index_select, masked_fill, scatter_add, tril, triu,
)
from minigrad.ops import indexing  # noqa: F401
from minigrad.ops.linalg import bmm, einsum, matmul, mm  # noqa: F401
from minigrad.ops.reduction import (  # noqa: F401
    amax, amin, argmax, argmin, log_softmax, logsumexp, max, mean, min, prod, softmax, std,
    sum, var,
)
from minigrad.ops.shape import (  # noqa: F401
    broadcast_to, cat, chunk, concatenate, expand, expand_as, flatten, permute, reshape, split,
    squeeze, stack, sum_to, t, transpose, unbind, unflatten, unsqueeze, view,
)
from minigrad.tensor import Tensor

# Tensor methods that are these functions with the tensor first (x.exp() is exp(x)).
_METHODS = """
abs add amax amin argmax argmin clamp clip cos div eq exp expand expand_as flatten gather ge
gelu gt index_select isfinite isnan le log log1p log_softmax logical_and logical_not
logical_or logical_xor logsumexp lt masked_fill matmul max maximum mean min minimum mul ne neg
permute pow prod relu reshape rsqrt scatter_add sigmoid sign sin softmax split chunk sqrt
square squeeze std sub sum t tanh transpose tril triu unbind unflatten unsqueeze var view
""".split()
for _name in _METHODS:
    setattr(Tensor, _name, globals()[_name])


def _tensor_where(self, condition, other):
    """``x.where(cond, y)`` is ``where(cond, x, y)``, as in PyTorch."""
    return where(condition, self, other)


def _view_as(self, other):
    return reshape(self, other.shape)


def _reshape_as(self, other):
    return reshape(self, other.shape)


Tensor.where = _tensor_where
Tensor.view_as = _view_as
Tensor.reshape_as = _reshape_as
Tensor.multiply = Tensor.mul
Tensor.subtract = Tensor.sub
Tensor.divide = Tensor.div
