"""Exercise div_backward: the backward of division, y = a / b.

Lesson: docs/course/03-writing-an-op.md. minigrad's own answer: ``DivFn`` in
minigrad/ops/elementwise.py (read it after you are done).

``forward`` works on arrays; ``backward`` gets ``gy`` (the gradient of the loss with respect to
``y``, a Tensor) and returns one gradient per input, *built from minigrad ops on Tensors*
(``gy / b``, not ``gy.data / b.data``), so that the backward can itself be differentiated.
Do not undo broadcasting: when ``b`` was broadcast, the engine sums your gradient back to
``b``'s shape (``sum_to``). ``self.needs_input_grad[i]`` says whether input i wants a gradient
(return None for it when not).

Check your work with ``minigrad exercises check div_backward``.
"""

from minigrad.autograd import Function


class DivFn(Function):
    """y = a / b;  ga = ?, gb = ?"""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        raise NotImplementedError("write DivFn.backward: return (ga, gb)")


def div(a, b):
    """a / b, elementwise, with broadcasting."""
    return DivFn.apply(a, b)
