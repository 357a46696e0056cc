"""Fine-tuning callbacks: gradual unfreezing (ULMFiT's schedule).

The callback follows the Keras hook protocol of :class:`minigrad.train.Callback`
(``on_train_begin``, ``on_epoch_begin(epoch, logs)``), so it plugs into ``minigrad.train.fit``
and ``keras.Model.fit``; a hand-written loop calls ``on_epoch_begin(epoch)`` itself.

Example:
    >>> from minigrad import nn
    >>> from minigrad.finetune import count_parameters
    >>> model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    >>> cb = GradualUnfreezing(model, layers=["0", "1", "2"], every=2)
    >>> for epoch in range(5):
    ...     cb.on_epoch_begin(epoch)
    ...     print(epoch, cb.unfrozen, count_parameters(model)[1])
    0 1 10
    1 1 10
    2 2 30
    3 2 30
    4 3 50
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from minigrad.finetune.freeze import freeze, unfreeze
from minigrad.nn.module import Module
from minigrad.train import Callback

__all__ = ["GradualUnfreezing"]

LayerSpec = Union[str, Sequence[str], Module]


class GradualUnfreezing(Callback):
    """Unfreeze one more layer group every ``every`` epochs, starting from the head.

    At epoch ``e`` the top ``initially_trainable + e // every`` groups of ``layers`` are
    trainable and the groups below them are frozen; parameters outside ``layers`` are left
    alone. The state depends on the epoch only, so a resumed run (``fit`` from a checkpoint's
    epoch) gets the same freezing.

    Build the optimizer over *all* the parameters (e.g. ``layerwise_lr_groups(...,
    trainable_only=False)``): frozen ones get no gradient and so no update, until unfrozen.

    Args:
        model: the model; None takes the one ``fit`` hands to the callback.
        layers: layer groups ordered from the input to the head; each a Module, a name
            pattern or a list of patterns (see :func:`minigrad.finetune.freeze.matches`).
        every: epochs between two unfreezings.
        initially_trainable: groups trainable from the first epoch (the head: 1).
        verbose: 1 prints a line when a group is unfrozen.

    Attributes:
        unfrozen: how many groups (from the top) are trainable now.
    """

    def __init__(self, model: Optional[Module] = None, layers: Sequence[LayerSpec] = (),
                 every: int = 1, initially_trainable: int = 1, verbose: int = 0) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"GradualUnfreezing: every must be >= 1, got {every}")
        if not layers:
            raise ValueError("GradualUnfreezing: give the layer groups, from input to head")
        self._target = model
        self.layers = list(layers)
        self.every = every
        self.initially_trainable = initially_trainable
        self.verbose = verbose
        self.unfrozen = 0

    def _model(self) -> Module:
        model = self._target if self._target is not None else self.model
        if model is None:
            raise RuntimeError("GradualUnfreezing has no model: pass one, or use it with fit")
        return model

    def _apply(self, group: LayerSpec, trainable: bool) -> None:
        action = unfreeze if trainable else freeze
        if isinstance(group, Module):
            action(group)
        else:
            action(self._model(), include=group)

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        self._set(0)

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._set(epoch)

    def _set(self, epoch: int) -> None:
        """Freeze and unfreeze the groups as epoch ``epoch`` wants them."""
        n = len(self.layers)
        wanted = min(n, self.initially_trainable + epoch // self.every)
        for depth, group in enumerate(self.layers):
            self._apply(group, trainable=depth >= n - wanted)
        if self.verbose and wanted != self.unfrozen:
            print(f"GradualUnfreezing: epoch {epoch + 1}: top {wanted}/{n} layer groups trainable")
        self.unfrozen = wanted
