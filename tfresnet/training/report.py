"""What a run leaves behind besides the model: history, metrics and plots.

Plots use matplotlib's Agg backend, so they are written on machines with no display.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tfresnet.files import write_atomic, write_json_atomic

__all__ = ["repair_history", "deduplicate_history", "evaluate", "write_metrics", "plot_run", "show_image"]


def repair_history(path: str) -> None:
    """Drops a last row cut short by a kill, so rows appended on resume start on a new line."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def deduplicate_history(path: str, *, end: int | None = None) -> pd.DataFrame:
    """Keeps one row per epoch (the last written), so a resumed run's history reads cleanly.

    Args:
        path: the run's ``history.csv``; rewritten in place.
        end: drop rows of epochs from `end` on (left by an attempt that was not repeated).
    """
    if not os.path.exists(path):
        return pd.DataFrame()
    history = pd.read_csv(path)
    if "epoch" in history:
        history = history.drop_duplicates("epoch", keep="last").sort_values("epoch")
        if end is not None:
            history = history[history["epoch"] < end]
    write_atomic(path, history.to_csv(index=False))
    return history


def evaluate(model, dataset, num_classes: int, *, keep_misclassified: int = 25) -> dict:
    """Accuracy, per-class accuracy, confusion matrix and a few misclassified images.

    Args:
        model: a trained model taking the dataset's images.
        dataset: batches of ``(images, labels)``; labels as ids or one-hot.
        num_classes: number of classes.
        keep_misclassified: how many wrong predictions to keep for the plot.

    Returns:
        A dict with ``loss`` (plain cross-entropy: no label smoothing, no L2 term, so runs with
        different regularisation compare), ``accuracy``, ``per_class_accuracy``,
        ``confusion_matrix`` (rows: true class) and ``misclassified`` (images, true, predicted).
    """
    import tensorflow as tf  # the datasets evaluated here are tf.data pipelines

    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    log_loss = 0.0
    wrong_images, wrong_true, wrong_pred = [], [], []
    for images, batch_labels in dataset:
        probs = np.asarray(model(images, training=False))
        labels = np.asarray(batch_labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        preds = probs.argmax(axis=1)
        confusion += tf.math.confusion_matrix(labels, preds, num_classes, dtype=tf.int64).numpy()
        log_loss -= np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).sum()
        if len(wrong_images) < keep_misclassified:
            miss = np.flatnonzero(preds != labels)[: keep_misclassified - len(wrong_images)]
            wrong_images.extend(np.asarray(images)[miss])
            wrong_true.extend(labels[miss])
            wrong_pred.extend(preds[miss])
    totals = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), totals, out=np.full(num_classes, np.nan),
                          where=totals > 0)
    return {
        "loss": float(log_loss / max(confusion.sum(), 1)),
        "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "examples": int(confusion.sum()),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion_matrix": confusion.tolist(),
        "misclassified": (np.asarray(wrong_images), np.asarray(wrong_true), np.asarray(wrong_pred)),
    }


def write_metrics(path: str, metrics: dict) -> None:
    """``metrics.json`` outside a run directory (`RunDir.write_metrics` inside one)."""
    write_json_atomic(path, {k: v for k, v in metrics.items() if k != "misclassified"}, indent=2)


def plot_run(run_dir: str, history: pd.DataFrame, metrics: dict, class_names: list[str]) -> list[str]:
    """Writes learning curves, the confusion matrix and a grid of misclassified images, each titled with its split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if not history.empty:
        keys = [k for k in ("loss", "accuracy") if k in history]
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
        for ax, key in zip(axes[0], keys):
            ax.plot(history["epoch"] + 1, history[key], marker="o", label="train")
            if f"val_{key}" in history:
                ax.plot(history["epoch"] + 1, history[f"val_{key}"], marker="o", label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        written.append(_save(fig, os.path.join(run_dir, "learning_curves.png")))

    confusion = np.asarray(metrics["confusion_matrix"])
    size = min(0.35 * len(class_names) + 3, 16)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    ax.set_yticks(ticks, class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 12:
        for (i, j), n in np.ndenumerate(confusion):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                    color="white" if n > confusion.max() / 2 else "black")
    ax.set_title(f"{metrics.get('split', 'test')} accuracy {metrics['accuracy']:.4f}")
    fig.tight_layout()
    written.append(_save(fig, os.path.join(run_dir, "confusion_matrix.png")))

    images, true, pred = metrics["misclassified"]
    if len(images):
        cols = min(5, len(images))
        rows = int(np.ceil(len(images) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, image, t, p in zip(axes.flat, images, true, pred):
            pixels = np.clip(image, 0, 255).astype("uint8")
            ax.imshow(pixels.squeeze(), cmap="gray" if pixels.shape[-1] == 1 else None)
            ax.set_title(f"{class_names[t]}\n-> {class_names[p]}", fontsize=7)
        fig.suptitle(f"misclassified {metrics.get('split', 'test')} images (true -> predicted)", fontsize=9)
        fig.tight_layout()
        written.append(_save(fig, os.path.join(run_dir, "misclassified.png")))
    return written


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    try:
        write_atomic(path, lambda partial: fig.savefig(partial, dpi=100))
    finally:
        plt.close(fig)
    return path


def show_image(path: str, width: float = 8.0):
    """Displays a PNG a run wrote, inline in a notebook.

    Returns an `IPython.display.Image` (a notebook shows it as the cell's output whatever the
    matplotlib backend: tfresnet draws with Agg, whose figures a notebook would only print as
    ``<Figure ...>``), or, without IPython, a matplotlib figure of the image.

    Args:
        path: the PNG.
        width: the width to show it at, in inches (at 100 pixels an inch).
    """
    try:
        from IPython.display import Image
    except ImportError:
        Image = None
    if Image is not None:
        return Image(filename=path, width=int(width * 100))
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    image = mpimg.imread(path)
    fig, ax = plt.subplots(figsize=(width, width * image.shape[0] / image.shape[1]))
    ax.imshow(image)
    ax.axis("off")
    return fig
