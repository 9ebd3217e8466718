"""Training plots on matplotlib (a fastai dependency): the LR finder, the loss curves, a confusion matrix and
per-entity F1. Each returns its `Figure`; `path=` also saves it as an image, atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["confusion_matrix_figure", "entity_f1_figure", "loss_figure", "save_figure"]


def save_figure(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    """Write `fig` to `path` (format from the suffix, default PNG) through a temporary file; returns `fig`."""
    if path is None:
        return fig
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".png", dir=target.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return fig


def lr_find_figure(lrs: Sequence[float], losses: Sequence[float], chosen: float, show: bool,
                   path: str | os.PathLike[str] | None) -> Any:
    """The LR finder's loss against the learning rate (log scale), the chosen rate marked on the curve; saved to
    `path` when given, closed unless `show`."""
    import matplotlib.pyplot as plt
    import numpy as np

    if len(lrs) > 10:  # as fastai's `plot_lr_find`: without the first and last 5 steps
        lrs, losses = lrs[5:-5], losses[5:-5]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("Learning Rate")
    ax.set_ylabel("Loss")
    at = float(np.interp(np.log(chosen), np.log(lrs), losses)) if len(lrs) else 0.0  # on the curve, not at its minimum
    ax.plot([chosen], [at], "o", color="red", label="chosen")
    ax.legend()
    ax.set_title(f"LR finder: chosen {chosen:.2e}")
    save_figure(fig, path)
    if not show:
        plt.close(fig)
    return fig


def loss_figure(train: Sequence[tuple[int, float]], valid: Sequence[tuple[int, float]]) -> Any:
    """Training loss per batch and validation loss per epoch (at the batch where each epoch ended)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot([i for i, _ in train], [v for _, v in train], label="train (smoothed)")
    if valid:
        ax.plot([i for i, _ in valid], [v for _, v in valid], "o-", label="valid")
    ax.set_xlabel("batch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title("Loss")
    return fig


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> Any:
    """A heatmap of a confusion matrix (rows: true label, columns: predicted), counts in the cells."""
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(labels))
    display.plot(cmap="Blues", xticks_rotation=45, colorbar=False)
    display.ax_.set_title("Confusion matrix (validation)")
    return display.figure_


def entity_f1_figure(report: dict[str, dict[str, float]]) -> Any:
    """A bar per entity type of its F1, labelled with its support (`seqeval` report)."""
    import matplotlib.pyplot as plt

    names = [n for n in report if not n.endswith(" avg")]
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1.5))
    bars = ax.barh(names, [report[n]["f1-score"] for n in names])
    for bar, name in zip(bars, names, strict=True):
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, f"n={int(report[name]['support'])}", va="center")
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("F1 (validation)")
    ax.set_title("F1 per entity type")
    ax.invert_yaxis()
    return fig
