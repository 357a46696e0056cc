"""``mg.amp.GradScaler``: dynamic loss scaling for float16 training (torch.amp.GradScaler's
signature, algorithm and defaults).

float16 gradients underflow to zero below about 6e-8. The scaler multiplies the loss by a large
factor S before ``backward`` so that small gradients survive, divides the gradients by S before
the optimizer step (``unscale_``), and skips the step when any gradient is inf or NaN (S was
too large): then S is halved. After ``growth_interval`` clean steps in a row S is doubled. The
scale is a float32 updated as PyTorch updates it, so the sequence of scales and of skipped steps
is PyTorch's.

The scale lives on the host: checking the gradients for inf/NaN costs one device-to-host copy
of a flag per optimizer and step (PyTorch waits once per step too, in ``step``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from minigrad import backend
from minigrad.tensor import Tensor

READY, UNSCALED, STEPPED = "ready", "unscaled", "stepped"  # an optimizer's stage in one step


def _fresh_state() -> dict:
    return {"stage": READY, "found_inf": None}


class GradScaler:
    """Scale the loss, unscale the gradients, skip inf/NaN steps and adapt the scale.

    Args:
        device: ``'cuda'`` (PyTorch's default: disabled with a warning when no GPU is
            available) or ``'cpu'``.
        init_scale: the first scale factor.
        growth_factor: the scale is multiplied by it after ``growth_interval`` clean steps.
        backoff_factor: the scale is multiplied by it after a step with inf/NaN gradients.
        growth_interval: clean steps in a row before the scale grows.
        enabled: False makes every method a pass-through (``step`` just steps).

    Example:
        >>> import minigrad as mg
        >>> w = mg.nn.Parameter(mg.ones(2))
        >>> opt = mg.optim.SGD([w], lr=0.1)
        >>> scaler = mg.amp.GradScaler("cpu", init_scale=4.0)
        >>> scaler.scale((w * 3).sum()).backward()
        >>> w.grad
        tensor([12., 12.])
        >>> scaler.step(opt); scaler.update()
        >>> w.grad, scaler.last_step_skipped
        (tensor([3., 3.]), False)
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = device
        self._enabled = bool(enabled)
        if device.split(":")[0] == "cuda" and self._enabled and not backend.cuda.is_available():
            warnings.warn("mg.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                          stacklevel=2)
            self._enabled = False
        self.last_step_skipped: Optional[bool] = None  # True: the last step() skipped
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
        self._init_scale = init_scale
        self._scale: Optional[np.float32] = None  # set by the first scale()
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._growth_tracker: Optional[int] = None
        self._per_optimizer_states: dict = {}

    # ------------------------------------------------------------------ the step
    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a Tensor or nested lists/tuples of them) times the scale factor."""
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = np.float32(self._init_scale)
            self._growth_tracker = self._init_growth_tracker
        factor = float(self._scale)

        def apply(value: Any) -> Any:
            if isinstance(value, Tensor):
                return value * factor
            if isinstance(value, Iterable):
                scaled = map(apply, value)
                return type(value)(scaled) if isinstance(value, (list, tuple)) else scaled
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply(outputs)

    def _check_scale(self, funcname: str) -> None:
        if self._scale is None:
            raise AssertionError(
                f"Attempted {funcname} but _scale is None.  This may indicate your script did "
                "not use scaler.scale(loss or outputs) earlier in the iteration."
            )

    def _state(self, optimizer: Any) -> dict:
        return self._per_optimizer_states.setdefault(id(optimizer), _fresh_state())

    def unscale_(self, optimizer: Any) -> None:
        """Divide ``optimizer``'s gradients by the scale in place and record inf/NaN in them.

        Call it at most once per optimizer and step, before anything reads the gradients
        (gradient clipping); ``step`` calls it when it was not called.
        """
        if not self._enabled:
            return
        self._check_scale("unscale_")
        state = self._state(optimizer)
        if state["stage"] == UNSCALED:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        if state["stage"] == STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        # PyTorch's inverse: the reciprocal in float64, rounded to float32
        inv_scale = float(np.float32(1.0 / np.float64(self._scale)))
        state["found_inf"] = self._unscale_grads(optimizer, inv_scale)
        state["stage"] = UNSCALED

    @staticmethod
    def _unscale_grads(optimizer: Any, inv_scale: float) -> bool:
        flags = []  # one 0-d "all finite" array per gradient: read once at the end
        for group in optimizer.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                array = grad.data
                if array.dtype == np.float16:
                    raise ValueError("Attempting to unscale FP16 gradients.")
                array *= array.dtype.type(inv_scale)
                flags.append(grad.xp.isfinite(array).all())
        return bool(flags) and not all(bool(f) for f in flags)

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """Unscale the gradients (unless ``unscale_`` did) and step, unless one is inf/NaN.

        Returns what ``optimizer.step`` returns, or None for a skipped step; the attribute
        ``last_step_skipped`` tells which (for learning-rate schedules).
        """
        if not self._enabled:
            self.last_step_skipped = False
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale("step")
        state = self._state(optimizer)
        if state["stage"] == STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] == READY:
            self.unscale_(optimizer)
        retval = None
        self.last_step_skipped = bool(state["found_inf"])
        if not self.last_step_skipped:
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = STEPPED
        return retval

    def update(self, new_scale: Optional[float] = None) -> None:
        """Back off after a skipped step, grow after ``growth_interval`` clean ones (or set
        ``new_scale``); call once per iteration, after every ``step``."""
        if not self._enabled:
            return
        self._check_scale("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise AssertionError(
                        "new_scale should be a float or a 1-element Tensor with "
                        "requires_grad=False."
                    )
                new_scale = new_scale.item()
            self._scale = np.float32(new_scale)
        else:
            found = [s["found_inf"] for s in self._per_optimizer_states.values()
                     if s["found_inf"] is not None]
            if not found:
                raise AssertionError("No inf checks were recorded prior to update.")
            self._update_scale(any(found))
        self._per_optimizer_states = {}

    def _update_scale(self, found_inf: bool) -> None:
        """PyTorch's ``_amp_update_scale_``: float32 scale times a float64 factor, rounded."""
        if found_inf:
            self._scale = np.float32(float(self._scale) * self._backoff_factor)
            self._growth_tracker = 0
            return
        successful = self._growth_tracker + 1
        if successful == self._growth_interval:
            with np.errstate(over="ignore"):  # past float32's range: inf, and no growth
                grown = np.float32(float(self._scale) * self._growth_factor)
            if np.isfinite(grown):
                self._scale = grown
            self._growth_tracker = 0
        else:
            self._growth_tracker = successful

    # ------------------------------------------------------------------ settings and state
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return float(self._init_scale if self._scale is None else self._scale)

    def get_growth_factor(self) -> float:
        """The factor the scale grows by."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the factor the scale grows by."""
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        """The factor the scale backs off by."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the factor the scale backs off by."""
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        """Clean steps in a row before the scale grows."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the clean steps in a row before the scale grows."""
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return self._growth_tracker

    def is_enabled(self) -> bool:
        """False when built with ``enabled=False`` (or for CUDA without a GPU)."""
        return self._enabled

    def state_dict(self) -> dict:
        """``scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval`` and
        ``_growth_tracker`` (PyTorch's keys); empty when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` gave (a no-op when disabled)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = np.float32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker = int(state_dict["_growth_tracker"])
