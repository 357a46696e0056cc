"""Plots of training runs (matplotlib, the optional ``plot`` extra: ``pip install ".[plot]"``).

`training_curves` draws the loss and each metric per epoch, training and validation side by
side, and writes a PNG. matplotlib is imported only when a plot is made, so ``import minigrad``
never needs it.

Example:
    >>> history = {"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.5],
    ...            "accuracy": [0.7, 0.85, 0.9], "val_accuracy": [0.65, 0.8, 0.84]}
    >>> training_curves(history, "curves.png")  # doctest: +SKIP
    'curves.png'
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["training_curves"]

INSTALL_HINT = (
    'minigrad.plot needs matplotlib. Install it with: pip install ".[plot]" (from the minigrad '
    "checkout) or pip install matplotlib"
)


def _import_pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    matplotlib.use("Agg")  # NOTE: no display needed: we only write files
    import matplotlib.pyplot as plt

    return plt


def _epoch_ticks(n_epochs: int, most: int = 10) -> list:
    """At most `most` whole-epoch ticks from 1 to `n_epochs`.

    Example:
        >>> _epoch_ticks(1), _epoch_ticks(4), _epoch_ticks(30)
        ([1], [1, 2, 3, 4], [1, 4, 7, 10, 13, 16, 19, 22, 25, 28])
    """
    step = max(1, -(-n_epochs // most))
    return list(range(1, n_epochs + 1, step))


def training_curves(history: Any, path: str | os.PathLike, title: str | None = None) -> str:
    """Writes a PNG with one panel per metric (loss first): training and validation curves.

    Args:
        history: a `History` (from ``fit``) or its ``.history`` dict: metric name -> per-epoch
            values, with ``val_`` names for validation.
        path: the PNG file to write (its folder is created if needed).
        title: a title over the panels.

    Returns:
        The path written, as a string.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
        ValueError: the history holds no values.
    """
    values = getattr(history, "history", history)
    if not isinstance(values, dict) or not any(len(v) for v in values.values()):
        raise ValueError("training_curves: the history holds no per-epoch values")
    plt = _import_pyplot()
    names = [n for n in values if not n.startswith("val_") and n != "learning_rate"]
    names += [n[4:] for n in values if n.startswith("val_") and n[4:] not in values]
    names.sort(key=lambda n: (n != "loss", n))
    n_epochs = max(len(v) for v in values.values())
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, label, style in ((name, "training", "-"), (f"val_{name}", "validation", "--")):
            if key in values and len(values[key]):
                epochs = range(1, len(values[key]) + 1)
                # a run of one epoch has no line to draw: big markers, labelled with the value
                size = 8 if n_epochs == 1 else 3
                ax.plot(epochs, values[key], style, marker="o", markersize=size, label=label)
                if n_epochs == 1:
                    ax.annotate(f"{values[key][0]:.4g}", (1, values[key][0]),
                                textcoords="offset points", xytext=(8, 0), va="center")
        ax.set_xticks(_epoch_ticks(n_epochs))  # whole epochs, never 0.95 .. 1.05
        ax.set_xlim(0.5, n_epochs + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
