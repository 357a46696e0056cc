"""Differentiable primitives (one ``Function`` each) and the composites built on them.

The public ones (``__all__``) are also ``minigrad.*`` functions, as in ``torch.*``, and Tensor
methods where PyTorch has them (``mg.exp(x)`` and ``x.exp()``). The helpers the ops share
(``lift``, ``sum_to``, ``cast``, ``to_device``, ``getitem``) stay here.
"""

from minigrad.ops.elementwise import (  # noqa: F401  (the namespace ops.*)
    abs, add, bitwise_not, cast, clamp, clip, clone, cos, div, eq, erf, exp, ge, gelu, gt,
    isfinite, isnan, le, lift, log, log1p, logical_and, logical_not, logical_or, logical_xor,
    lt, maximum, minimum, mul, ne, neg, pow, relu, rsqrt, sigmoid, sign, sin, sqrt, square, sub,
    tanh, to_device, where,
)
from minigrad.ops.indexing import (  # noqa: F401  (the namespace ops.*)
    gather, getitem, index_select, masked_fill, scatter_add, tril, triu,
)
from minigrad.ops import indexing  # noqa: F401
from minigrad.ops.linalg import bmm, einsum, matmul, mm  # noqa: F401
from minigrad.ops.reduction import (  # noqa: F401  (the namespace ops.*)
    amax, amin, argmax, argmin, log_softmax, logsumexp, max, mean, min, prod, softmax, std,
    sum, var,
)
from minigrad.ops.shape import (  # noqa: F401  (the namespace ops.*)
    broadcast_to, cat, chunk, concatenate, expand, expand_as, flatten, permute, reshape, split,
    squeeze, stack, sum_to, t, transpose, unbind, unflatten, unsqueeze, view,
)
from minigrad.ops.layout import (  # noqa: F401  (the namespace ops.*)
    cumprod, cumsum, diag, flip, repeat, repeat_interleave, roll,
)
from minigrad.ops.linalg import addmm, baddbmm, outer  # noqa: F401
from minigrad.ops.norms import norm  # noqa: F401
from minigrad.ops.pointwise import (  # noqa: F401  (the namespace ops.*)
    allclose, ceil, floor, fmod, isclose, lerp, remainder, round,
)
from minigrad.ops.random import bernoulli, multinomial  # noqa: F401
from minigrad.ops.sorting import (  # noqa: F401  (the namespace ops.*)
    all, any, argsort, count_nonzero, nonzero, sort, topk, unique,
)

__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "bmm", "broadcast_to", "cat", "chunk",
    "clamp", "clip", "clone", "concatenate", "cos", "div", "einsum", "eq", "erf", "exp",
    "flatten", "gather", "ge", "gelu", "gt", "index_select", "isfinite", "isnan", "le", "log",
    "bitwise_not", "log1p", "log_softmax", "logical_and", "logical_not", "logical_or",
    "logical_xor",
    "logsumexp", "lt", "masked_fill", "matmul", "max", "maximum", "mean", "min", "minimum", "mm",
    "mul", "ne", "neg", "permute", "pow", "prod", "relu", "reshape", "rsqrt", "scatter_add",
    "sigmoid", "sign", "sin", "softmax", "split", "sqrt", "square", "squeeze", "stack", "std",
    "sub", "sum", "t", "tanh", "transpose", "tril", "triu", "unbind", "unflatten", "unsqueeze",
    "var", "where",
    # PyTorch names added for issue 19 (sorting, tiling, rounding, norms, sampling)
    "addmm", "all", "allclose", "any", "argsort", "baddbmm", "bernoulli", "ceil",
    "count_nonzero", "cumprod", "cumsum", "diag", "flip", "floor", "fmod", "isclose", "lerp",
    "multinomial", "nonzero", "norm", "outer", "remainder", "repeat_interleave", "roll", "round",
    "sort", "topk", "unique",
]
