"""Figure helpers shared by the ``plot_*`` functions of feature maps, ideal images and Grad-CAM."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["pyplot", "save_figure", "show_image", "grid_shape", "PANEL_INCHES", "DPI"]

# Each picture of an input is drawn in a panel of PANEL_INCHES at DPI: 2.6 x 120 = 312 pixels, so
# that after margins an image is at least 256 pixels on screen, whatever its own size (a 28x28
# digit, a 128x128 photo are blown up; `show_image` keeps their pixels sharp).
PANEL_INCHES = 2.6
DPI = 120


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (training machines have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, *, dpi: int = DPI) -> str:
    """Writes `fig` to `path` (creating its folder), closes it and returns `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path


def show_image(ax, image) -> None:
    """Draws raw pixels in [0, 255] (H x W x 1 as grey, H x W x 3 as RGB) on `ax`, without axes.

    Pixels are blown up to the panel's size by nearest neighbour, so small inputs stay sharp
    rather than blurred.
    """
    image = np.clip(np.asarray(image, dtype="float32"), 0.0, 255.0) / 255.0
    if image.ndim == 3 and image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def grid_shape(n: int, *, max_columns: int = 8) -> tuple[int, int]:
    """Rows and columns of a near-square grid of `n` panels, at most `max_columns` wide."""
    columns = min(max_columns, max(1, int(np.ceil(np.sqrt(n)))))
    return int(np.ceil(n / columns)), columns
