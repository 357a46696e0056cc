"""Matrix products: batched ``matmul`` and ``einsum``."""

from __future__ import annotations

import string

from minigrad.autograd import Function
from minigrad.ops.elementwise import binary_operands
from minigrad.ops.shape import expand, reshape, transpose
from minigrad.tensor import Tensor


class MatmulFn(Function):
    """y = a @ b (batched, broadcasting batch dims);  ga = gy @ b^T, gb = a^T @ gy.

    Both inputs have at least 2 dimensions here (``matmul`` promotes vectors); the engine
    reduces broadcast batch dimensions of ga and gb.
    """

    def forward(self, a, b):
        return self.xp.matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            if _transposed_matrix(a):  # (b gy^T)^T: ga in a's memory order, see below
                ga = transpose(matmul(b, transpose(gy, -1, -2)), -1, -2)
            else:
                ga = matmul(gy, transpose(b, -1, -2))
        if self.needs_input_grad[1]:
            if _transposed_matrix(b):
                gb = transpose(matmul(transpose(gy, -1, -2), a), -1, -2)
            else:
                gb = matmul(transpose(a, -1, -2), gy)
        return ga, gb


def _transposed_matrix(t: Tensor) -> bool:
    """Whether ``t`` is a 2-D matrix stored column by column, as ``W.t()`` in ``F.linear`` is.

    Its gradient is then computed as the transpose of a row-major product (the same GEMM,
    with the operands swapped), so that after ``t()``'s backward the weight's gradient is
    row-major like the weight (PyTorch's ``addmm`` backward does the same). Otherwise every
    later pass over it, Adam's, clipping's, accumulation's, strides across rows: measured on
    W4, the per-parameter Adam update took 14 ms on transposed gradients against 6 ms.
    """
    flags = t.data.flags
    return t.ndim == 2 and flags.f_contiguous and not flags.c_contiguous


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics: vectors are promoted, batches broadcast."""
    a, b = binary_operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise RuntimeError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    if a.ndim == 1 and b.ndim == 1:
        return reshape(MatmulFn.apply(reshape(a, (1, -1)), reshape(b, (-1, 1))), ())
    if a.ndim == 1:
        out = MatmulFn.apply(reshape(a, (1, -1)), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = MatmulFn.apply(a, reshape(b, (-1, 1)))
        return reshape(out, out.shape[:-1])
    return MatmulFn.apply(a, b)


mm = matmul
bmm = matmul


def _parse_einsum(equation: str, shapes):
    """Split an equation into per-operand subscripts and the output, expanding ``...``."""
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs, out = eq, None
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(
            f"einsum(): the equation has {len(ins)} operands but {len(shapes)} were given"
        )
    used = set(c for c in eq if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    ell_dims = 0
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            ell_dims = max(ell_dims, len(shape) - (len(sub) - 3))
    ell = "".join(free[:ell_dims])
    expanded = []
    for sub, shape in zip(ins, shapes):
        if "..." in sub:
            n = len(shape) - (len(sub) - 3)
            sub = sub.replace("...", ell[ell_dims - n:])
        if len(sub) != len(shape):
            raise ValueError(
                f"einsum(): the subscript {sub!r} does not match an operand of shape "
                f"{tuple(shape)}"
            )
        expanded.append(sub)
    if out is None:  # implicit mode: letters seen once, sorted, after the ellipsis
        counts = {}
        for sub in expanded:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return expanded, out


class EinsumFn(Function):
    """y = einsum(eq, *xs);  g_i = einsum(out, other subscripts -> subscripts of x_i).

    Each operand's gradient is the same contraction with gy in its place. Letters that appear
    only in operand i (summed away) come back by broadcasting. A letter repeated inside one
    operand (a diagonal, 'ii->i') has no gradient here.
    """

    def forward(self, *xs, equation=""):
        self.subs, self.out = _parse_einsum(equation, [x.shape for x in xs])
        eq = ",".join(self.subs) + "->" + self.out
        return self.xp.einsum(eq, *xs, optimize=len(xs) > 2)

    def backward(self, gy):
        grads = []
        for i, (x, sub) in enumerate(zip(self.inputs, self.subs)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            if len(set(sub)) != len(sub):
                raise RuntimeError(
                    f"einsum backward: operand {i} repeats a subscript ('{sub}', a diagonal); "
                    "its gradient is not supported. Use an explicit mask instead."
                )
            others = [(s, t) for j, (s, t) in enumerate(zip(self.subs, self.inputs)) if j != i]
            have = set(self.out).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in sub if c in have)
            eq = ",".join([self.out] + [s for s, _ in others]) + "->" + kept
            g = einsum(eq, gy, *[t for _, t in others])
            if kept != sub:  # letters summed only inside x_i: broadcast back
                g = reshape(g, tuple(x.shape[k] if c in have else 1 for k, c in enumerate(sub)))
                g = expand(g, x.shape)
            grads.append(g)
        return tuple(grads)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``; ``...`` is supported."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return EinsumFn.apply(*operands, equation=equation)
