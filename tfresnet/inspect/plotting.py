"""Figure helpers shared by the ``plot_*`` functions of feature maps, ideal images and Grad-CAM."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["pyplot", "save_figure", "show_image", "grid_shape"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (training machines have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, *, dpi: int = 120) -> str:
    """Writes `fig` to `path` (creating its folder), closes it and returns `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path


def show_image(ax, image) -> None:
    """Draws raw pixels in [0, 255] (H x W x 1 as grey, H x W x 3 as RGB) on `ax`, without axes."""
    image = np.clip(np.asarray(image, dtype="float32"), 0.0, 255.0) / 255.0
    if image.ndim == 3 and image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])


def grid_shape(n: int, *, max_columns: int = 8) -> tuple[int, int]:
    """Rows and columns of a near-square grid of `n` panels, at most `max_columns` wide."""
    columns = min(max_columns, max(1, int(np.ceil(np.sqrt(n)))))
    return int(np.ceil(n / columns)), columns
