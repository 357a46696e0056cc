"""Matrix products: batched ``matmul``, ``linear`` and ``einsum``."""

from __future__ import annotations

import math
import string

import numpy as np

from minigrad import autocast_state
from minigrad.autocast_state import state as _autocast
from minigrad.autograd import Function, is_grad_enabled
from minigrad.blas import add_product
from minigrad.ops.elementwise import binary_operands, relu as _relu
from minigrad.ops.indexing import _scatter_add
from minigrad.ops.shape import expand, reshape, transpose
from minigrad.tensor import Tensor


class MatmulFn(Function):
    """y = a @ b (batched, broadcasting batch dims);  ga = gy @ b^T, gb = a^T @ gy.

    Both inputs have at least 2 dimensions here (``matmul`` promotes vectors); the engine
    reduces broadcast batch dimensions of ga and gb. For a 2-D input whose gradient the engine
    already sums in a buffer of its own (a weight used at every step of an unrolled RNN) the
    term is added into that buffer by one GEMM with beta = 1 (``accumulates``).
    """

    accumulates = True

    def forward(self, a, b):
        return _matmul_arrays(self.xp, a, b)

    def backward(self, gy):
        a, b = self.inputs
        needs = self.needs_input_grad
        ga = gb = None
        added_a = added_b = False  # a term added into the engine's sum: None goes back for it
        into = self.grad_buffers  # the engine's running sums, or None (Function.accumulates)
        if into is not None and gy.ndim == 2:  # (add_product checks dtypes and layouts)
            added_a = into[0] is not None and add_product(into[0], gy.data, b.data.T)
            added_b = into[1] is not None and add_product(into[1], a.data.T, gy.data)
        # NOTE: a column-major operand (W.t() in x @ W.t()) gets its gradient as the transpose
        # of a row-major product, so the gradient has the operand's memory order
        if not is_grad_enabled():  # a plain backward: the same products on the arrays
            xp, g, x, y, make = self.xp, gy.data, a.data, b.data, Tensor._make
            if needs[0] and not added_a:
                ga = make(_mT(_matmul_arrays(xp, y, _mT(g))) if _transposed_matrix(a)
                          else _matmul_arrays(xp, g, _mT(y)))
            if needs[1] and not added_b:
                gb = make(_mT(_matmul_arrays(xp, _mT(g), x)) if _transposed_matrix(b)
                          else _matmul_arrays(xp, _mT(x), g))
            return ga, gb
        if needs[0] and not added_a:
            ga = (b @ gy.mT).mT if _transposed_matrix(a) else gy @ b.mT
        if needs[1] and not added_b:
            gb = (gy.mT @ a).mT if _transposed_matrix(b) else a.mT @ gy
        return ga, gb


def _mT(array):
    """The array with its last two dimensions swapped (a view), as ``Tensor.mT``."""
    return array.swapaxes(-1, -2)


def _matmul_arrays(xp, a, b):
    """``a @ b`` on arrays; NumPy's 2-byte floats through float32 (NumPy has no fast GEMM for
    them) and back."""
    if a.dtype.char in "eE" and xp is np:
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
    return xp.matmul(a, b)


def _transposed_matrix(t: Tensor) -> bool:
    """Whether ``t`` is a 2-D matrix stored column by column, as ``W.t()`` in ``x @ W.t()`` is.

    Its gradient is then computed as the transpose of a row-major product (the same GEMM,
    with the operands swapped), so that after ``t()``'s backward the weight's gradient is
    row-major like the weight, as PyTorch's is; a column-major gradient would make every later
    pass over it (the optimizer's, clipping's, accumulation's) stride across rows.
    """
    flags = t.data.flags
    return t.ndim == 2 and flags.f_contiguous and not flags.c_contiguous


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics: vectors are promoted, batches broadcast."""
    if _autocast.on:
        a, b = autocast_state.lower(a, b)
    a, b = binary_operands(a, b)
    sa, sb = a.data.shape, b.data.shape
    if not sa or not sb:
        raise RuntimeError("both arguments to matmul need to be at least 1D")
    if sa[-1] != sb[-2 if len(sb) > 1 else 0]:
        raise RuntimeError(
            f"matmul: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied "
            f"({sa[-1]} != {sb[-2 if len(sb) > 1 else 0]})"
        )
    if len(sa) == 1 and len(sb) == 1:
        return reshape(MatmulFn.apply(reshape(a, (1, -1)), reshape(b, (-1, 1))), ())
    if len(sa) == 1:
        out = MatmulFn.apply(reshape(a, (1, -1)), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if len(sb) == 1:
        out = MatmulFn.apply(a, reshape(b, (-1, 1)))
        return reshape(out, out.shape[:-1])
    return MatmulFn.apply(a, b)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Product of two matrices (both 2-D, no broadcasting), as ``torch.mm``."""
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(
            f"mm: both arguments must be matrices (2-D); got {a.ndim}-D and {b.ndim}-D "
            "(matmul broadcasts and promotes vectors)"
        )
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched product of two 3-D tensors of one batch size, (B, n, m) @ (B, m, p), as
    ``torch.bmm`` (no broadcasting: matmul does that)."""
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: both arguments must be 3-D; got {a.ndim}-D and {b.ndim}-D")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(
            f"bmm: batch sizes differ ({a.shape[0]} and {b.shape[0]}); bmm does not broadcast"
        )
    return matmul(a, b)


class LinearFn(Function):
    """y = x W^T + b over the last dimension (PyTorch's ``linear``/``addmm``), one node;
    gx = gy W,  gW = gy^T x (row-major, like W),  gb = gy summed over the rows. With ``relu``
    (a forward parameter) the node is ``relu(x W^T + b)``: the ReLU runs in place on the fresh
    product and its backward masks gy by the output (> 0), so the pair makes one array and
    one node instead of two.

    With ``dropout`` (``(keep, p)``: a Dropout's boolean mask of the output's shape and its
    probability; NumPy only: Sequential's Linear, ReLU, Dropout in training, the Keras MNIST
    model's hidden layer) the node is ``relu(x W^T + b) * keep / (1 - p)``, scaled and masked
    in place as the Dropout's node does it; the backward masks gy by the output (> 0 exactly
    where the ReLU passed and the mask kept) and scales it: the two nodes' numbers bit for bit.

    ``F.linear`` could be written ``x @ W.t() + b`` (three nodes: a transpose, a product and a
    broadcast add, whose backward takes seven ops); as one node its backward is four, and the
    weight's gradient comes out row-major directly. The inputs are checked by ``linear``: x at
    least 2-D, W 2-D, b 1-D, one dtype, matching sizes.
    """

    def forward(self, x, w, b=None, relu=False, dropout=None):
        if x.ndim == 2:  # the common case: the rows are x itself, and so is the output's shape
            self.rows, rows = x.shape[0], x
        else:
            self.rows = n = math.prod(x.shape[:-1])  # (not -1: not inferable for 0 features)
            rows = x.reshape(n, x.shape[-1])  # a view when x is contiguous
        if x.dtype.char in "eE" and self.xp is np:  # NumPy: no fast 2-byte-float GEMM
            y = np.matmul(rows.astype(np.float32), w.T.astype(np.float32))
            if b is not None:
                y += b
            y = y.astype(x.dtype)
        else:
            y = self.xp.matmul(rows, w.T)  # BLAS reads W^T through its strides: no copy
            if b is not None:
                y += b  # y is fresh: in place
        self.relu, self.dropout = relu, dropout
        if relu:
            self.xp.maximum(y, 0, out=y)
            if dropout is not None:  # (the ops of kernels.dropout's DropoutFn, in place)
                keep, p = dropout
                self.scale = y.dtype.type(1.0 / (1.0 - p))
                y *= self.scale
                y *= keep if rows is x else keep.reshape(y.shape)
            self.y = y  # the backward's mask (the output's array)
        return y if rows is x else y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        needs, rows = self.needs_input_grad, self.rows
        if not is_grad_enabled():  # a plain backward: no graph of it to record
            return self._backward_arrays(gy.data, x.data, w.data, needs, rows)
        gy = gy.reshape(rows, gy.shape[-1])  # (rows, out)
        if self.relu:  # NOTE: the subgradient at 0 is 0, as ReLU's
            gy = gy * Tensor._make(self.y > 0)
            if self.dropout is not None:
                gy = gy * Tensor._make(np.asarray(self.scale))
        gx = (gy @ w).reshape(x.shape) if needs[0] else None
        gw = gy.t() @ x.reshape(rows, x.shape[-1]) if needs[1] else None  # (out, in), like W
        if len(needs) == 2:
            return gx, gw
        # NOTE: the bias gradient (a column sum of gy) as a GEMV with ones: BLAS reads gy
        # once on all its threads, about twice as fast as NumPy's row-by-row sum here
        gb = matmul(Tensor._make(gy.xp.ones(rows, dtype=gy.dtype)), gy) if needs[2] else None
        return gx, gw, gb

    def _backward_arrays(self, gy, x, w, needs, rows):
        """The backward above on the arrays, when it is not itself recorded (no
        ``create_graph``): the same products and numbers, without a node or a Tensor per
        intermediate (a training step's backward of small layers is mostly that overhead)."""
        xp, make = self.xp, Tensor._make
        gy = gy.reshape(rows, gy.shape[-1])
        if self.relu:
            gy = gy * (self.y > 0)
            if self.dropout is not None:
                gy *= self.scale
        gx = make(_matmul_arrays(xp, gy, w).reshape(x.shape)) if needs[0] else None
        gw = make(_matmul_arrays(xp, gy.T, x.reshape(rows, x.shape[-1]))) if needs[1] else None
        if len(needs) == 2:
            return gx, gw
        gb = make(_matmul_arrays(xp, _ones(xp, rows, gy.dtype), gy)) if needs[2] else None
        return gx, gw, gb


_ONES: dict = {}  # (n, dtype) -> a read-only NumPy vector of n ones (the bias GEMV's)


def _ones(xp, n: int, dtype):
    """n ones of ``dtype``: on NumPy one cached read-only vector per size (a layer's batch
    size repeats every step), on a GPU a new array."""
    if xp is not np:
        return xp.ones(n, dtype=dtype)
    ones = _ONES.get((n, dtype))
    if ones is None:
        if len(_ONES) > 64:  # (a few batch sizes in a run; never an unbounded cache)
            _ONES.clear()
        ones = _ONES[(n, dtype)] = np.ones(n, dtype=dtype)
        ones.flags.writeable = False
    return ones


def linear(x: Tensor, w: Tensor, b=None, *, relu: bool = False, dropout=None) -> Tensor:
    """y = x W^T + b (``relu(x W^T + b)`` with ``relu``; with ``dropout`` = ``(keep, p)`` as
    well, on NumPy arrays, that times ``keep / (1 - p)``: a Dropout's boolean mask of the
    output's shape, 0 <= p < 1): one :class:`LinearFn` node when the operands are plain (x at
    least 2-D, W 2-D, b None or 1-D, all one dtype, matching sizes); otherwise
    ``x @ W.t() + b`` with matmul's broadcasting, promotion and error messages.

    Example:
        >>> import minigrad as mg
        >>> linear(mg.tensor([[1.0, -2.0]]), mg.eye(2), relu=True)
        tensor([[1., 0.]])
    """
    if dropout is not None:
        keep, p = dropout
        if not (relu and 0.0 <= p < 1.0 and type(x.data) is np.ndarray
                and type(keep) is np.ndarray and keep.dtype == np.bool_
                and keep.shape == x.data.shape[:-1] + w.data.shape[:1]):
            raise ValueError(
                f"linear(dropout=(keep, p)): after a ReLU, on NumPy arrays, with 0 <= p < 1 and "
                f"a boolean mask of the output's shape; got relu={relu}, p={p}, "
                f"{type(keep).__name__} mask of shape {getattr(keep, 'shape', None)} for x "
                f"{tuple(x.shape)} on {x.device} and W {tuple(w.shape)}")
    if _autocast.on:
        x, w, b = autocast_state.lower(x, w, b)
    # NOTE: the plain-operands test reads the arrays (each Tensor property is a call, and this
    # runs per layer per step)
    xd, wd = x.data, w.data
    if (xd.ndim >= 2 and wd.ndim == 2 and xd.shape[-1] == wd.shape[1] and xd.dtype == wd.dtype
            and (b is None or (isinstance(b, Tensor) and b.data.shape == wd.shape[:1]
                               and b.data.dtype == wd.dtype))):
        if not relu:  # (no keyword parameters: the plain layer's call is the cheapest)
            return LinearFn.apply(x, w) if b is None else LinearFn.apply(x, w, b)
        return (LinearFn.apply(x, w, relu=relu, dropout=dropout) if b is None else
                LinearFn.apply(x, w, b, relu=relu, dropout=dropout))
    if w.ndim == 1 or x.ndim <= 2:
        out = matmul(x, transpose(w, 0, 1) if w.ndim == 2 else w)
    else:  # batch dimensions folded into one: the weight's gradient is one product
        out = matmul(reshape(x, (-1, x.shape[-1])), transpose(w, 0, 1))
        out = reshape(out, x.shape[:-1] + (w.shape[0],))
    out = out if b is None else out + b
    out = _relu(out) if relu else out
    if dropout is not None:  # (the same numbers: keep / (1 - p) is 0 or the scale)
        scaled = keep.astype(out.data.dtype)
        scaled *= out.data.dtype.type(1.0 / (1.0 - p))
        out = out * Tensor._make(scaled)
    return out


class EmbeddingFn(Function):
    """y = W[idx]: the rows of W (R, *D) picked by integer indices of any shape, i.e. a
    one-hot matrix times W;  gW = the rows of gy added at idx (:class:`RowsAddFn`; repeated
    indices accumulate). The indices are checked by the caller (``F.embedding``)."""

    def forward(self, w, idx=None):
        self.idx = idx
        return w[idx]

    def backward(self, gy):
        return RowsAddFn.apply(gy, idx=self.idx, rows=self.inputs[0].shape[0])


class RowsAddFn(Function):
    """y = zeros (rows, *D) with each row of x (*idx.shape, *D) added at its index;
    gx = gy[idx] (:class:`EmbeddingFn`)."""

    def forward(self, x, idx=None, rows=0):
        self.idx = idx
        flat = idx.reshape(-1)
        out = self.xp.zeros((rows,) + x.shape[idx.ndim:], dtype=x.dtype)
        _add_rows(self.xp, out, flat, x.reshape((flat.size,) + out.shape[1:]))
        return out

    def backward(self, gy):
        return EmbeddingFn.apply(gy, idx=self.idx)


# a row repeated more often than this: np.add.at instead of one pass per repetition
_MAX_ROUNDS = 32


def _add_rows(xp, out, idx, values) -> None:
    """``out[idx[i]] += values[i]`` for every i, repeated indices accumulating in the order
    they come (as ``np.add.at``, so the sums are the same to the bit).

    ``np.add.at`` goes row by row (W4's embedding gradient, 2048 rows of 256: 3.3 ms); here the
    i-th occurrences of every index are added at once, in "rounds" without repeats, as plain
    fancy-index adds (0.7 ms). Indices repeated more than ``_MAX_ROUNDS`` times use
    ``np.add.at``; CuPy arrays ``cupyx.scatter_add``.

    Example:
        >>> out = np.zeros(3)
        >>> _add_rows(np, out, np.array([2, 0, 2]), np.array([1.0, 2.0, 3.0]))
        >>> out
        array([2., 0., 4.])
    """
    if xp is not np or idx.size == 0:
        _scatter_add(xp, out, idx, values)
        return
    order = np.argsort(idx, kind="stable")
    ordered = idx[order]
    first = np.empty(idx.size, dtype=bool)  # where each index's run starts in sorted order
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    # each entry's occurrence number: its place in sorted order minus its run's start
    rank = np.arange(idx.size) - np.repeat(starts, np.diff(np.append(starts, idx.size)))
    rounds = int(rank.max()) + 1
    if rounds > _MAX_ROUNDS:
        np.add.at(out, idx, values)
        return
    for k in range(rounds):
        pick = order[rank == k] if rounds > 1 else order
        out[idx[pick]] += values[pick]  # no index twice within a round


def embedding(w: Tensor, idx: Tensor) -> Tensor:
    """The rows of ``w`` at integer indices ``idx`` (any shape), ``(*idx.shape, *w.shape[1:])``;
    indices must be in ``[0, w.shape[0])`` (``F.embedding`` checks them).

    Example:
        >>> import minigrad as mg
        >>> embedding(mg.tensor([[1.0, 2.0], [3.0, 4.0]]), mg.tensor([1, 1, 0]))
        tensor([[3., 4.],
                [3., 4.],
                [1., 2.]])
    """
    key = idx.data
    if type(w.data) is not type(key):  # the indices on the weight's device
        key = w.xp.asarray(key)
    return EmbeddingFn.apply(w, idx=key)


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
    operand ('ii->i' reads a diagonal) gets the gradient of its distinct letters, scattered
    onto that diagonal by a contraction with identity matrices (:func:`_onto_diagonal`).
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
            distinct = "".join(dict.fromkeys(sub))  # 'bii' -> 'bi'
            size = {c: x.shape[k] for k, c in enumerate(sub)}
            others = [(s, t) for j, (s, t) in enumerate(zip(self.subs, self.inputs)) if j != i]
            have = set(self.out).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in distinct if c in have)
            eq = ",".join([self.out] + [s for s, _ in others]) + "->" + kept
            g = einsum(eq, gy, *[t for _, t in others])
            if kept != distinct:  # letters summed only inside x_i: broadcast back
                g = reshape(g, tuple(size[c] if c in have else 1 for c in distinct))
                g = expand(g, tuple(size[c] for c in distinct))
            if distinct != sub:
                g = _onto_diagonal(g, distinct, sub, size, self.subs + [self.out])
            grads.append(g)
        return tuple(grads)


def _onto_diagonal(g: Tensor, distinct: str, sub: str, size: dict, used) -> Tensor:
    """The gradient ``g`` (subscripts ``distinct``) placed on the diagonals of an operand whose
    subscripts ``sub`` repeat letters, zero elsewhere: each repeat gets a fresh letter tied to
    the first by an identity matrix, e.g. 'ii' <- einsum('i,ij->ij', g, eye)."""
    taken = set("".join(used))
    fresh = iter(c for c in string.ascii_letters if c not in taken)
    seen, renamed, eyes, ties = set(), [], [], []
    for c in sub:
        if c in seen:
            f = next(fresh)
            renamed.append(f)
            ties.append(c + f)
            eyes.append(Tensor._make(g.xp.eye(size[c], dtype=g.dtype)))
        else:
            seen.add(c)
            renamed.append(c)
    return einsum(",".join([distinct] + ties) + "->" + "".join(renamed), g, *eyes)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``; ``...`` is supported."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return EinsumFn.apply(*operands, equation=equation)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """The outer product of two vectors: ``out[i, j] = a[i] * b[j]``.

    Example:
        >>> import minigrad as mg
        >>> mg.outer(mg.tensor([1.0, 2.0]), mg.tensor([1.0, 10.0]))
        tensor([[ 1., 10.],
                [ 2., 20.]])
    """
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"outer: expected two 1-D tensors, got {a.ndim}-D and {b.ndim}-D")
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


def _scaled_sum(input: Tensor, product: Tensor, beta, alpha) -> Tensor:  # noqa: A002
    """beta * input + alpha * product; ``beta == 0`` ignores input (NaN included), as PyTorch."""
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return (input if beta == 1 else input * beta) + product


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * (mat1 @ mat2), ``input`` broadcast to the product's shape.

    Example:
        >>> import minigrad as mg
        >>> mg.addmm(mg.ones(2, 2), mg.eye(2), mg.eye(2), beta=2)
        tensor([[3., 2.],
                [2., 3.]])
    """
    return _scaled_sum(input, mm(mat1, mat2), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * (batch1 @ batch2) for 3-D batches (``torch.baddbmm``).

    Example:
        >>> import minigrad as mg
        >>> mg.baddbmm(mg.zeros(1, 2, 2), mg.ones(1, 2, 3), mg.ones(1, 3, 2)).shape
        (1, 2, 2)
    """
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)
