"""What an evaluation got wrong: the top losses and the most-confused pairs.

fastai's ``ClassificationInterpretation`` in two functions over what
`tfresnet.training.report.evaluate` gathers, and their figures:

- `top_losses`: the images with the highest loss (the model was most confidently wrong about
  them, or least sure where it was right), each with its predicted and true class by name, the
  loss and the probabilities (fastai's ``plot_top_losses``), drawn by `plot_top_losses`;
- `most_confused`: the off-diagonal cells of the confusion matrix, largest first, as
  ``(true, predicted, count)`` rows (fastai's ``most_confused``), written by `write_most_confused`
  as a CSV and drawn as a table.

`write` is what ``tfresnet evaluate`` calls: ``top_losses.png``, ``most_confused.png`` and
``most_confused.csv`` beside its ``metrics.json``.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from tfresnet.files import write_atomic

__all__ = ["MOST_CONFUSED_ROWS", "TOP_LOSSES", "most_confused", "plot_most_confused", "plot_top_losses",
           "top_losses", "write", "write_most_confused"]

TOP_LOSSES = 9  # a 3x3 grid, as fastai's plot_top_losses(9)
MOST_CONFUSED_ROWS = 20  # rows drawn in the PNG table; the CSV and metrics.json keep every pair
_PANEL_INCHES = 2.9  # each image panel 290 px wide at the 100 dpi figures are saved at


def top_losses(highest: dict, class_names: list[str]) -> list[dict]:
    """The highest-loss examples as JSON rows, highest first.

    Args:
        highest: `tfresnet.training.report.evaluate`'s ``highest_losses`` (arrays).
        class_names: the model's class names, by output index.

    Returns:
        One dict per example: ``rank``, ``index`` (position in the evaluated split's order),
        ``true``, ``predicted`` (class names), ``loss``, ``probability`` (of the predicted
        class), ``true_probability`` and ``correct``.
    """
    rows = []
    for i in range(len(highest["loss"])):
        true, predicted = int(highest["true"][i]), int(highest["predicted"][i])
        rows.append({
            "rank": i + 1, "index": int(highest["index"][i]),
            "true": class_names[true], "predicted": class_names[predicted],
            "loss": round(float(highest["loss"][i]), 6),
            "probability": round(float(highest["probability"][i]), 6),
            "true_probability": round(float(highest["true_probability"][i]), 6),
            "correct": true == predicted,
        })
    return rows


def most_confused(confusion, class_names: list[str], *, min_count: int = 1) -> list[dict]:
    """The (true, predicted) pairs the model mixed up, most often first.

    Args:
        confusion: the confusion matrix, rows the true class.
        class_names: the names of its rows and columns.
        min_count: leave out pairs seen fewer times.

    Returns:
        ``{"true", "predicted", "count", "share"}`` rows, `share` being the fraction of the true
        class's images given that prediction; ties in the order of the classes.
    """
    confusion = np.asarray(confusion)
    totals = confusion.sum(axis=1)
    pairs = [(-int(confusion[t, p]), t, p) for t in range(len(confusion)) for p in range(len(confusion))
             if t != p and confusion[t, p] >= max(min_count, 1)]
    return [{"true": class_names[t], "predicted": class_names[p], "count": -n,
             "share": round(-n / int(totals[t]), 4)} for n, t, p in sorted(pairs)]


def write_most_confused(path: str, pairs: list[dict]) -> str:
    """Writes the pairs as CSV (``true,predicted,count,share``); returns `path`."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["true", "predicted", "count", "share"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(pairs)
    write_atomic(path, text.getvalue())
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_top_losses(path: str, rows: list[dict], images, *, split: str = "test") -> str:
    """A grid of the top-loss images, each titled with its true and predicted names, loss and
    probabilities; panels at least 256 pixels wide (small images are enlarged, pixels kept sharp)."""
    from tfresnet.training.report import save_figure

    plt = _pyplot()
    cols = min(3, len(rows))
    grid_rows = int(np.ceil(len(rows) / cols))
    fig, axes = plt.subplots(grid_rows, cols, figsize=(_PANEL_INCHES * cols, (_PANEL_INCHES + 0.7) * grid_rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row, image in zip(axes.flat, rows, images):
        pixels = np.clip(np.asarray(image), 0, 255).astype("uint8")
        ax.imshow(pixels.squeeze(), cmap="gray" if pixels.shape[-1] == 1 else None, interpolation="nearest")
        ax.set_title(f"#{row['index']}  true: {row['true']}\npredicted: {row['predicted']} {row['probability']:.2f}\n"
                     f"loss {row['loss']:.2f}, p(true) {row['true_probability']:.2f}", fontsize=9,
                     color="black" if row["correct"] else "firebrick")
    fig.suptitle(f"top {len(rows)} losses on the {split} split (red: wrong; #: position in the split)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_most_confused(path: str, pairs: list[dict], *, split: str = "test", examples: int | None = None) -> str:
    """The most-confused pairs as a drawn table (at most `MOST_CONFUSED_ROWS` rows)."""
    from tfresnet.training.report import save_figure

    plt = _pyplot()
    shown = pairs[:MOST_CONFUSED_ROWS]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.32 * (len(shown) + 1)))
    ax.axis("off")
    cells = [[p["true"], p["predicted"], str(p["count"]), f"{100 * p['share']:.1f}%"] for p in shown]
    # The table fills the axes (bbox), so the figure's height, a row's height per pair, is all table.
    table = ax.table(cellText=cells, colLabels=["true", "predicted as", "images", "of the true class"],
                     bbox=[0, 0, 1, 1], cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    more = f"; {len(pairs) - len(shown)} more in most_confused.csv" if len(pairs) > len(shown) else ""
    of = f" ({examples:,} images)" if examples else ""
    ax.set_title(f"most-confused pairs on the {split} split{of}{more}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def write(out_dir: str, metrics: dict, highest: dict) -> list[str]:
    """Writes ``most_confused.csv`` and, where there is something to draw, ``top_losses.png``
    and ``most_confused.png``; returns the files' names.

    Args:
        out_dir: the evaluation's folder.
        metrics: holding ``top_losses``, ``most_confused`` and ``split``.
        highest: `tfresnet.training.report.evaluate`'s ``highest_losses`` (for the images).
    """
    split = metrics.get("split", "test")
    written = [write_most_confused(os.path.join(out_dir, "most_confused.csv"), metrics["most_confused"])]
    if metrics["top_losses"]:
        written.append(plot_top_losses(os.path.join(out_dir, "top_losses.png"), metrics["top_losses"],
                                       highest["image"], split=split))
    if metrics["most_confused"]:
        written.append(plot_most_confused(os.path.join(out_dir, "most_confused.png"), metrics["most_confused"],
                                          split=split, examples=metrics.get("examples")))
    return [os.path.basename(p) for p in written]
