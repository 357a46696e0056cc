"""What the fused normalisations with an optional affine weight and bias share (batch_norm,
layer_norm): their inputs are x, then the weight if the call has one, then the bias if it has
one."""

from __future__ import annotations


class AffineInputs:
    """Mixin of a ``FusedFunction`` whose inputs are ``(x[, weight][, bias])``."""

    has_weight: bool  # forward parameters: which of weight and bias follow x in the inputs,
    has_bias: bool
    eps: float  # and the epsilon added to the variance

    def _weight_bias(self, wb: tuple) -> tuple:
        """``(weight, bias)`` from the inputs after x, each None where the call has none."""
        return (wb[0] if self.has_weight else None), (wb[-1] if self.has_bias else None)

    def _input_grads(self, gx, gw, gb) -> tuple:
        """``(gx[, gw][, gb])``: the gradients of the inputs the call has."""
        grads = [gx]
        if self.has_weight:
            grads.append(gw)
        if self.has_bias:
            grads.append(gb)
        return tuple(grads)
