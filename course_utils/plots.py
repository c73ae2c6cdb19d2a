"""Plots the lessons share: learning curves, confusion matrices, image grids, boxes and arrows of model diagrams.

Introduced in lesson 01. Every function that makes a figure returns it, titled and labelled; `draw_box` and
`draw_arrow` add the parts of a model diagram to an existing axes.
Importing this module applies the course's style (`use_course_style`): a colour-blind-safe
palette and an opaque white figure background, readable in a dark notebook theme.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle
import numpy as np
import seaborn as sns
import torch
from sklearn.metrics import confusion_matrix

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
DIVERGING_CMAP = "RdBu_r"  # for values whose sign matters: red positive, blue negative, white zero


def use_course_style() -> None:
    """Set matplotlib's colour cycle to `PALETTE` and make figures opaque white (lesson 01)."""
    plt.rcParams.update({
        "axes.prop_cycle": plt.cycler(color=PALETTE),
        "figure.facecolor": "white", "savefig.facecolor": "white", "axes.facecolor": "white",
    })


use_course_style()


def draw_box(ax: plt.Axes, x: float, y: float, text: str, color: str, width: float = 0.8) -> None:
    """A labelled box of a model diagram, centred at (x, y), 0.6 high (lessons 03 and 05)."""
    ax.add_patch(Rectangle((x - width / 2, y - 0.3), width, 0.6, facecolor=color, edgecolor="black", alpha=0.9))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def draw_arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], color: str = "black") -> None:
    """An arrow of a model diagram from `start` to `end`: what a box reads."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=8, color=color, lw=0.8))


def plot_confusion_matrix(y_true: torch.Tensor | np.ndarray, y_pred: torch.Tensor | np.ndarray,
                          class_names: Sequence[str], title: str = "Confusion matrix",
                          normalize: bool = True) -> plt.Figure:
    """A heatmap of true class (rows) against predicted class (columns).

    y_true, y_pred: (N,) integer labels in [0, len(class_names)), tensors on any device or arrays.
    With `normalize`, each row is divided by its count, so the diagonal is per-class recall.
    """
    y_true, y_pred = (np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y) for y in (y_true, y_pred))
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    labels = np.arange(len(class_names))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true" if normalize else None)
    size = max(4.5, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalize else "d", cmap="Blues",
                xticklabels=class_names, yticklabels=class_names, cbar=False, ax=ax)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.tight_layout()
    return fig


def show_images(images: torch.Tensor | np.ndarray, titles: Sequence[str] | None = None,
                ncols: int = 8, title: str = "", cmap: str = "gray_r", signed: bool = False) -> plt.Figure:
    """A grid of images, each with an optional title.

    images: (N, H, W) or (N, 1, H, W), any numeric dtype.
    signed: the sign of the values matters (filters, edge responses): draw them with the
        diverging `DIVERGING_CMAP`, limits symmetric about 0 shared by all images, and a colour bar.
    """
    images = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, 1, H, W), got shape {images.shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, 1.7 * nrows), squeeze=False)
    limit = float(np.abs(images).max()) or 1.0
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            if signed:
                shown = ax.imshow(images[i], cmap=DIVERGING_CMAP, vmin=-limit, vmax=limit)
            else:
                ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    if signed:
        fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8, label="value (0 = white)")
    return fig
