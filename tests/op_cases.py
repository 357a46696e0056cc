"""The op table: one row per op, driving forward, gradient, double-backward, dtype, 0-d, empty
and PyTorch checks in test_ops.py.

A row gives the minigrad function, its NumPy expectation, the input shapes, the input domain
(``'any'``, ``'positive'``, ``'nonzero'``: away from a kink or a pole) and, when PyTorch has the
same op, the PyTorch function.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

import minigrad as mg


@dataclass
class OpCase:
    name: str
    fn: Callable
    ref: Callable
    shapes: Sequence[tuple]
    domain: str = "any"
    torch_fn: Optional[Callable] = None
    elementwise: bool = False  # 0-d and empty inputs make sense
    double: bool = True  # run gradgradcheck
    atol: float = 1e-5
    extra: dict = field(default_factory=dict)

    def arrays(self, rng, shapes=None):
        out = []
        for s in shapes or self.shapes:
            a = rng.standard_normal(s)
            if self.domain == "positive":
                a = np.abs(a) + 0.5
            elif self.domain == "nonzero":
                a = np.where(np.abs(a) < 0.2, np.sign(a + 1e-12) * 0.2 + a, a)
            elif self.domain == "distinct":
                # values far apart so max/min/sort kinks are not crossed by finite differences
                a = rng.permutation(np.arange(int(np.prod(s)))).reshape(s) * 0.1 + 0.01
            out.append(a)
        return out

    def make_inputs(self, device, dtype="float64", requires_grad=True, rng=None, shapes=None):
        rng = rng or np.random.default_rng(0)
        return [
            mg.tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)
            for a in self.arrays(rng, shapes)
        ]


def _softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _erf(a):
    import math

    return np.vectorize(math.erf)(a)


def _gelu(a):
    return 0.5 * a * (1 + _erf(a / np.sqrt(2)))


def _gelu_tanh(a):
    return 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))


def _lse(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (np.log(np.exp(a - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


def _t(name):
    """A PyTorch function by dotted name, resolved lazily (torch may be absent)."""

    def call(*args, **kw):
        import torch

        obj = torch
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj(*args, **kw)

    return call


_IDX = np.array([2, 0, 2, 1])
_GATHER_IDX = np.array([[0, 2, 2], [1, 0, 1]])
_MASK = np.array([[True, False, True], [False, False, True]])

OP_CASES = [
    # arithmetic (broadcasting shapes on purpose)
    OpCase("add", lambda a, b: a + b, np.add, [(2, 3), (3,)], torch_fn=_t("add"), elementwise=True),
    OpCase("sub", lambda a, b: a - b, np.subtract, [(2, 1), (2, 3)], torch_fn=_t("sub"),
           elementwise=True),
    OpCase("mul", lambda a, b: a * b, np.multiply, [(2, 3), (2, 3)], torch_fn=_t("mul"),
           elementwise=True),
    OpCase("div", lambda a, b: a / b, np.divide, [(2, 3), (1, 3)], domain="nonzero",
           torch_fn=_t("div"), elementwise=True),
    OpCase("pow", lambda a, b: a**b, np.power, [(2, 3), (2, 3)], domain="positive",
           torch_fn=_t("pow"), elementwise=True),
    OpCase("pow_scalar", lambda a: a**3, lambda a: a**3, [(4,)], torch_fn=lambda a: a**3,
           elementwise=True),
    OpCase("rsub_scalar", lambda a: 2.5 - a, lambda a: 2.5 - a, [(4,)],
           torch_fn=lambda a: 2.5 - a, elementwise=True),
    OpCase("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, [(4,)], domain="nonzero",
           torch_fn=lambda a: 2.0 / a, elementwise=True),
    OpCase("neg", lambda a: -a, np.negative, [(2, 3)], torch_fn=_t("neg"), elementwise=True),
    # unary maths
    OpCase("abs", mg.abs, np.abs, [(2, 3)], domain="nonzero", torch_fn=_t("abs"),
           elementwise=True),
    OpCase("exp", mg.exp, np.exp, [(2, 3)], torch_fn=_t("exp"), elementwise=True),
    OpCase("log", mg.log, np.log, [(2, 3)], domain="positive", torch_fn=_t("log"),
           elementwise=True),
    OpCase("log1p", mg.log1p, np.log1p, [(2, 3)], domain="positive", torch_fn=_t("log1p"),
           elementwise=True),
    OpCase("sqrt", mg.sqrt, np.sqrt, [(2, 3)], domain="positive", torch_fn=_t("sqrt"),
           elementwise=True),
    OpCase("sin", mg.sin, np.sin, [(2, 3)], torch_fn=_t("sin"), elementwise=True),
    OpCase("cos", mg.cos, np.cos, [(2, 3)], torch_fn=_t("cos"), elementwise=True),
    OpCase("tanh", mg.tanh, np.tanh, [(2, 3)], torch_fn=_t("tanh"), elementwise=True),
    OpCase("sigmoid", mg.sigmoid, lambda a: 1 / (1 + np.exp(-a)), [(2, 3)],
           torch_fn=_t("sigmoid"), elementwise=True),
    OpCase("relu", mg.relu, lambda a: np.maximum(a, 0), [(2, 3)], domain="nonzero",
           torch_fn=_t("relu"), elementwise=True),
    OpCase("gelu", mg.gelu, _gelu, [(3, 4)], torch_fn=_t("nn.functional.gelu"),
           elementwise=True),
    OpCase("gelu_tanh", lambda a: mg.gelu(a, approximate="tanh"), _gelu_tanh, [(3, 4)],
           torch_fn=lambda a: _t("nn.functional.gelu")(a, approximate="tanh"), elementwise=True),
    OpCase("erf", mg.erf, _erf, [(3, 4)], torch_fn=_t("erf"), elementwise=True),
    OpCase("clamp", lambda a: mg.clamp(a, -0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), [(3, 4)],
           domain="distinct", torch_fn=lambda a: a.clamp(-0.5, 0.7), elementwise=True),
    OpCase("maximum", mg.maximum, np.maximum, [(2, 3), (3,)], torch_fn=_t("maximum"),
           elementwise=True),
    OpCase("minimum", mg.minimum, np.minimum, [(2, 3), (2, 3)], torch_fn=_t("minimum"),
           elementwise=True),
    OpCase("where", lambda a, b: mg.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b),
           [(2, 3), (3,)], torch_fn=lambda a, b: _t("where")(a > 0, a, b), elementwise=True),
    # reductions
    OpCase("sum", lambda a: a.sum(), np.sum, [(2, 3)], torch_fn=lambda a: a.sum()),
    OpCase("sum_dim", lambda a: a.sum(dim=1), lambda a: a.sum(axis=1), [(2, 3, 4)],
           torch_fn=lambda a: a.sum(dim=1)),
    OpCase("sum_keepdim", lambda a: a.sum(dim=(0, 2), keepdim=True),
           lambda a: a.sum(axis=(0, 2), keepdims=True), [(2, 3, 4)],
           torch_fn=lambda a: a.sum(dim=(0, 2), keepdim=True)),
    OpCase("mean", lambda a: a.mean(dim=-1), lambda a: a.mean(axis=-1), [(2, 3)],
           torch_fn=lambda a: a.mean(dim=-1)),
    OpCase("var", lambda a: a.var(dim=1), lambda a: a.var(axis=1, ddof=1), [(3, 4)],
           torch_fn=lambda a: a.var(dim=1)),
    OpCase("var_biased", lambda a: a.var(dim=0, unbiased=False), lambda a: a.var(axis=0),
           [(3, 4)], torch_fn=lambda a: a.var(dim=0, unbiased=False)),
    OpCase("std", lambda a: a.std(), lambda a: a.std(ddof=1), [(3, 4)],
           torch_fn=lambda a: a.std()),
    OpCase("prod", lambda a: a.prod(dim=1), lambda a: a.prod(axis=1), [(3, 4)],
           torch_fn=lambda a: a.prod(dim=1)),
    OpCase("prod_all", lambda a: a.prod(), np.prod, [(2, 3)], torch_fn=lambda a: a.prod()),
    OpCase("max_all", lambda a: a.max(), np.max, [(3, 4)], domain="distinct",
           torch_fn=lambda a: a.max()),
    OpCase("max_dim", lambda a: a.max(dim=1)[0], lambda a: a.max(axis=1), [(3, 4)],
           domain="distinct", torch_fn=lambda a: a.max(dim=1)[0]),
    OpCase("min_dim", lambda a: a.min(dim=0, keepdim=True).values,
           lambda a: a.min(axis=0, keepdims=True), [(3, 4)], domain="distinct",
           torch_fn=lambda a: a.min(dim=0, keepdim=True).values),
    OpCase("amax", lambda a: mg.amax(a, dim=(0, 1)), lambda a: a.max(axis=(0, 1)), [(3, 4, 2)],
           domain="distinct", torch_fn=lambda a: _t("amax")(a, dim=(0, 1))),
    OpCase("logsumexp", lambda a: a.logsumexp(dim=1), lambda a: _lse(a, 1), [(3, 4)],
           torch_fn=lambda a: a.logsumexp(dim=1)),
    OpCase("softmax", lambda a: a.softmax(dim=-1), lambda a: _softmax(a, -1), [(3, 4)],
           torch_fn=lambda a: a.softmax(dim=-1)),
    OpCase("softmax_dim0", lambda a: a.softmax(dim=0), lambda a: _softmax(a, 0), [(3, 4, 2)],
           torch_fn=lambda a: a.softmax(dim=0)),
    OpCase("log_softmax", lambda a: a.log_softmax(dim=1), lambda a: np.log(_softmax(a, 1)),
           [(3, 5)], torch_fn=lambda a: a.log_softmax(dim=1)),
    # shapes
    OpCase("reshape", lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1), [(2, 3, 2)],
           torch_fn=lambda a: a.reshape(3, -1)),
    OpCase("transpose", lambda a: a.transpose(0, 2), lambda a: a.swapaxes(0, 2), [(2, 3, 4)],
           torch_fn=lambda a: a.transpose(0, 2)),
    OpCase("permute", lambda a: a.permute(1, 2, 0), lambda a: a.transpose(1, 2, 0), [(2, 3, 4)],
           torch_fn=lambda a: a.permute(1, 2, 0)),
    OpCase("T", lambda a: a.T, lambda a: a.T, [(2, 3)], torch_fn=lambda a: a.T),
    OpCase("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [(2, 1, 3)],
           torch_fn=lambda a: a.squeeze(1)),
    OpCase("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a[..., None], [(2, 3)],
           torch_fn=lambda a: a.unsqueeze(-1)),
    OpCase("expand", lambda a: a.expand(4, 2, 3), lambda a: np.broadcast_to(a, (4, 2, 3)),
           [(2, 1)], torch_fn=lambda a: a.expand(4, 2, 3)),
    OpCase("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [(2, 3, 2)],
           torch_fn=lambda a: a.flatten(1)),
    OpCase("cat", lambda a, b: mg.cat([a, b], dim=1), lambda a, b: np.concatenate([a, b], 1),
           [(2, 3), (2, 2)], torch_fn=lambda a, b: _t("cat")([a, b], dim=1)),
    OpCase("stack", lambda a, b: mg.stack([a, b], dim=1), lambda a, b: np.stack([a, b], 1),
           [(2, 3), (2, 3)], torch_fn=lambda a, b: _t("stack")([a, b], dim=1)),
    OpCase("split", lambda a: a.split([1, 3], dim=1)[1], lambda a: a[:, 1:], [(2, 4)],
           torch_fn=lambda a: a.split([1, 3], dim=1)[1]),
    OpCase("chunk", lambda a: a.chunk(3, dim=0)[2] * 2, lambda a: a[4:] * 2, [(5, 2)],
           torch_fn=lambda a: a.chunk(3, dim=0)[2] * 2),
    # indexing
    OpCase("getitem_basic", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(3, 4)],
           torch_fn=lambda a: a[1:, ::2]),
    OpCase("getitem_int_neg", lambda a: a[-1, None, ..., 1], lambda a: a[-1, None, ..., 1],
           [(3, 4, 2)], torch_fn=lambda a: a[-1, None, ..., 1]),
    OpCase("getitem_repeat", lambda a: a[mg.tensor(_IDX)], lambda a: a[_IDX], [(3, 2)],
           torch_fn=lambda a: a[_t("tensor")(_IDX)]),
    OpCase("getitem_bool", lambda a: a[mg.tensor(_MASK)], lambda a: a[_MASK], [(2, 3)],
           torch_fn=lambda a: a[_t("tensor")(_MASK)]),
    OpCase("getitem_pair", lambda a: a[mg.tensor([0, 1, 1]), mg.tensor([2, 2, 0])],
           lambda a: a[[0, 1, 1], [2, 2, 0]], [(2, 3)],
           torch_fn=lambda a: a[[0, 1, 1], [2, 2, 0]]),
    # NOTE: gather and masked_fill take their index/mask on the input's device, as PyTorch's
    OpCase("gather", lambda a: a.gather(1, mg.tensor(_GATHER_IDX, device=a.device)),
           lambda a: np.take_along_axis(a, _GATHER_IDX, 1), [(2, 3)],
           torch_fn=lambda a: a.gather(1, _t("tensor")(_GATHER_IDX))),
    OpCase("masked_fill", lambda a: a.masked_fill(mg.tensor(_MASK, device=a.device), -1.5),
           lambda a: np.where(_MASK, -1.5, a), [(2, 3)],
           torch_fn=lambda a: a.masked_fill(_t("tensor")(_MASK), -1.5)),
    OpCase("index_select", lambda a: a.index_select(1, mg.tensor([1, 1, 0])),
           lambda a: a[:, [1, 1, 0]], [(2, 3)],
           torch_fn=lambda a: a.index_select(1, _t("tensor")([1, 1, 0]))),
    OpCase("tril", lambda a: a.tril(), np.tril, [(3, 3)], torch_fn=lambda a: a.tril()),
    # matrix products
    OpCase("matmul", lambda a, b: a @ b, np.matmul, [(3, 4), (4, 2)], torch_fn=_t("matmul")),
    OpCase("matmul_batched", lambda a, b: a @ b, np.matmul, [(2, 3, 4), (4, 5)],
           torch_fn=_t("matmul")),
    OpCase("matmul_bcast", lambda a, b: a @ b, np.matmul, [(2, 1, 3, 4), (3, 4, 2)],
           torch_fn=_t("matmul")),
    OpCase("matmul_vec", lambda a, b: a @ b, np.matmul, [(4,), (4, 3)], torch_fn=_t("matmul")),
    OpCase("matmul_matvec", lambda a, b: a @ b, np.matmul, [(2, 4), (4,)],
           torch_fn=_t("matmul")),
    OpCase("dot", lambda a, b: a @ b, np.matmul, [(4,), (4,)], torch_fn=_t("matmul")),
    OpCase("einsum_bmm", lambda a, b: mg.einsum("bij,bjk->bik", a, b),
           lambda a, b: np.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 2)],
           torch_fn=lambda a, b: _t("einsum")("bij,bjk->bik", a, b)),
    OpCase("einsum_reduce", lambda a, b: mg.einsum("ij,jk->i", a, b),
           lambda a, b: np.einsum("ij,jk->i", a, b), [(2, 3), (3, 4)],
           torch_fn=lambda a, b: _t("einsum")("ij,jk->i", a, b)),
    OpCase("einsum_ellipsis", lambda a, b: mg.einsum("...ij,...j->...i", a, b),
           lambda a, b: np.einsum("...ij,...j->...i", a, b), [(2, 3, 4), (2, 4)],
           torch_fn=lambda a, b: _t("einsum")("...ij,...j->...i", a, b)),
    OpCase("einsum_outer", lambda a, b: mg.einsum("i,j", a, b),
           lambda a, b: np.einsum("i,j", a, b), [(3,), (2,)],
           torch_fn=lambda a, b: _t("einsum")("i,j", a, b)),
    # dtype / device moves
    OpCase("clone", lambda a: a.clone() * a, lambda a: a * a, [(2, 3)],
           torch_fn=lambda a: a.clone() * a),
    # PyTorch names of issue 19: sorting, running sums, tiling, products, norms, rounding
    OpCase("sort", lambda a: a.sort(dim=1).values, lambda a: np.sort(a, 1), [(3, 4)],
           domain="distinct", torch_fn=lambda a: a.sort(dim=1).values),
    OpCase("sort_desc", lambda a: a.sort(dim=0, descending=True)[0],
           lambda a: -np.sort(-a, 0), [(3, 4)], domain="distinct",
           torch_fn=lambda a: a.sort(dim=0, descending=True)[0]),
    OpCase("topk", lambda a: a.topk(2, dim=1).values, lambda a: -np.sort(-a, 1)[:, :2],
           [(3, 4)], domain="distinct", torch_fn=lambda a: a.topk(2, dim=1).values),
    OpCase("topk_smallest", lambda a: a.topk(3, largest=False)[0], lambda a: np.sort(a)[:3],
           [(5,)], domain="distinct", torch_fn=lambda a: a.topk(3, largest=False)[0]),
    OpCase("cumsum", lambda a: a.cumsum(1), lambda a: np.cumsum(a, 1), [(3, 4)],
           torch_fn=lambda a: a.cumsum(1)),
    OpCase("cumprod", lambda a: a.cumprod(dim=-1), lambda a: np.cumprod(a, -1), [(2, 4)],
           torch_fn=lambda a: a.cumprod(dim=-1)),
    OpCase("flip", lambda a: a.flip([0, 2]), lambda a: np.flip(a, (0, 2)), [(2, 3, 2)],
           torch_fn=lambda a: a.flip([0, 2])),
    OpCase("roll", lambda a: a.roll((1, -2), (0, 1)), lambda a: np.roll(a, (1, -2), (0, 1)),
           [(3, 4)], torch_fn=lambda a: a.roll((1, -2), (0, 1))),
    OpCase("roll_flat", lambda a: a.roll(2), lambda a: np.roll(a, 2), [(2, 3)],
           torch_fn=lambda a: a.roll(2)),
    OpCase("repeat", lambda a: a.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), [(2, 3)],
           torch_fn=lambda a: a.repeat(2, 1, 3)),
    OpCase("repeat_interleave", lambda a: a.repeat_interleave(2, dim=1),
           lambda a: np.repeat(a, 2, axis=1), [(2, 3)],
           torch_fn=lambda a: a.repeat_interleave(2, dim=1)),
    OpCase("repeat_interleave_counts",
           lambda a: mg.repeat_interleave(a, mg.tensor([2, 0, 1]), dim=0),
           lambda a: np.repeat(a, [2, 0, 1], axis=0), [(3, 2)],
           torch_fn=lambda a: _t("repeat_interleave")(a, _t("tensor")([2, 0, 1]), dim=0)),
    OpCase("diag_embed", lambda a: mg.diag(a, 1), lambda a: np.diag(a, 1), [(3,)],
           torch_fn=lambda a: _t("diag")(a, 1)),
    OpCase("diag_extract", lambda a: a.diag(-1), lambda a: np.diag(a, -1), [(3, 4)],
           torch_fn=lambda a: a.diag(-1)),
    OpCase("outer", mg.outer, np.outer, [(3,), (2,)], torch_fn=_t("outer")),
    OpCase("addmm", lambda c, a, b: mg.addmm(c, a, b, beta=0.5, alpha=2.0),
           lambda c, a, b: 0.5 * c + 2.0 * (a @ b), [(3,), (2, 4), (4, 3)],
           torch_fn=lambda c, a, b: _t("addmm")(c, a, b, beta=0.5, alpha=2.0)),
    OpCase("baddbmm", lambda c, a, b: c.baddbmm(a, b, alpha=0.5),
           lambda c, a, b: c + 0.5 * (a @ b), [(2, 3, 2), (2, 3, 4), (2, 4, 2)],
           torch_fn=lambda c, a, b: c.baddbmm(a, b, alpha=0.5)),
    OpCase("lerp", mg.lerp, lambda a, b, w: a + w * (b - a), [(2, 3), (2, 3), (3,)],
           torch_fn=_t("lerp")),
    OpCase("lerp_scalar", lambda a, b: a.lerp(b, 0.3), lambda a, b: a + 0.3 * (b - a),
           [(2, 3), (2, 3)], torch_fn=lambda a, b: a.lerp(b, 0.3), elementwise=True),
    OpCase("norm", lambda a: a.norm(), lambda a: np.sqrt((a * a).sum()), [(3, 4)],
           torch_fn=lambda a: a.norm()),
    OpCase("norm_dim", lambda a: a.norm(dim=1, keepdim=True),
           lambda a: np.sqrt((a * a).sum(1, keepdims=True)), [(3, 4)],
           torch_fn=lambda a: a.norm(dim=1, keepdim=True)),
    OpCase("norm_p3", lambda a: a.norm(p=3, dim=0), lambda a: (np.abs(a) ** 3).sum(0) ** (1 / 3),
           [(3, 4)], domain="nonzero", torch_fn=lambda a: a.norm(p=3, dim=0)),
    OpCase("linalg_norm_inf", lambda a: mg.linalg.norm(a, float("inf"), dim=1),
           lambda a: np.abs(a).max(1), [(3, 4)], domain="distinct",
           torch_fn=lambda a: _t("linalg.norm")(a, float("inf"), dim=1)),
    OpCase("matrix_norm_1", lambda a: mg.linalg.matrix_norm(a, 1),
           lambda a: np.linalg.norm(a, 1, axis=(-2, -1)), [(2, 3, 4)], domain="distinct",
           torch_fn=lambda a: _t("linalg.matrix_norm")(a, 1)),
    OpCase("sign", mg.sign, np.sign, [(2, 3)], domain="nonzero", torch_fn=_t("sign"),
           elementwise=True),
    OpCase("triu", lambda a: a.triu(1), lambda a: np.triu(a, 1), [(3, 4)],
           torch_fn=lambda a: a.triu(1)),
    OpCase("floor", mg.floor, np.floor, [(2, 3)], torch_fn=_t("floor"), elementwise=True),
    OpCase("ceil", mg.ceil, np.ceil, [(2, 3)], torch_fn=_t("ceil"), elementwise=True),
    OpCase("round", mg.round, np.round, [(2, 3)], torch_fn=_t("round"), elementwise=True),
    OpCase("einsum_diagonal", lambda a: mg.einsum("ii->i", a), lambda a: np.einsum("ii->i", a),
           [(3, 3)], torch_fn=lambda a: _t("einsum")("ii->i", a)),
    OpCase("einsum_trace", lambda a: mg.einsum("ii", a), lambda a: np.einsum("ii", a),
           [(3, 3)], torch_fn=lambda a: _t("einsum")("ii", a)),
    OpCase("einsum_batch_diagonal", lambda a, b: mg.einsum("bii,bi->bi", a, b),
           lambda a, b: np.einsum("bii,bi->bi", a, b), [(2, 3, 3), (2, 3)],
           torch_fn=lambda a, b: _t("einsum")("bii,bi->bi", a, b)),
]
