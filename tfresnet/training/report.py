"""What a run leaves behind besides the model: history, metrics and plots.

Plots use matplotlib's Agg backend, so they are written on machines with no display.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tfresnet.files import write_atomic, write_json_atomic

__all__ = ["repair_history", "deduplicate_history", "evaluate", "write_metrics", "fine_tune_start", "learning_curves",
           "plot_run", "save_figure", "show_image"]


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


def evaluate(model, dataset, num_classes: int, *, keep_misclassified: int = 25, keep_top_losses: int = 0) -> dict:
    """Accuracy, per-class accuracy, confusion matrix and a few misclassified images.

    Args:
        model: a trained model taking the dataset's images, or any callable
            ``(images, training=False) -> probabilities`` (`tfresnet.using.tta.tta_model`).
        dataset: batches of ``(images, labels)``; labels as ids or one-hot.
        num_classes: number of classes.
        keep_misclassified: how many wrong predictions to keep for the plot.
        keep_top_losses: how many of the highest-loss examples to keep, with their images.

    Returns:
        A dict with ``loss`` (plain cross-entropy: no label smoothing, no L2 term, so runs with
        different regularisation compare), ``accuracy``, ``per_class_accuracy``,
        ``confusion_matrix`` (rows: true class) and ``misclassified`` (images, true, predicted);
        with `keep_top_losses`, also ``highest_losses``: arrays ``index`` (position in the
        dataset's order), ``loss``, ``true``, ``predicted``, ``probability`` (of the predicted
        class), ``true_probability`` and ``image``, highest loss first.
    """
    import tensorflow as tf  # the datasets evaluated here are tf.data pipelines

    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    log_loss, seen, highest = 0.0, 0, None
    wrong_images, wrong_true, wrong_pred = [], [], []
    for images, batch_labels in dataset:
        probs = np.asarray(model(images, training=False))
        labels = np.asarray(batch_labels)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        preds = probs.argmax(axis=1)
        confusion += tf.math.confusion_matrix(labels, preds, num_classes, dtype=tf.int64).numpy()
        losses = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
        log_loss += losses.sum()
        if keep_top_losses:
            highest = _keep_highest(highest, np.asarray(images), labels, probs, losses, seen, keep_top_losses)
        seen += len(labels)
        if len(wrong_images) < keep_misclassified:
            miss = np.flatnonzero(preds != labels)[: keep_misclassified - len(wrong_images)]
            wrong_images.extend(np.asarray(images)[miss])
            wrong_true.extend(labels[miss])
            wrong_pred.extend(preds[miss])
    totals = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), totals, out=np.full(num_classes, np.nan),
                          where=totals > 0)
    metrics = {
        "loss": float(log_loss / max(confusion.sum(), 1)),
        "accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "examples": int(confusion.sum()),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion_matrix": confusion.tolist(),
        "misclassified": (np.asarray(wrong_images), np.asarray(wrong_true), np.asarray(wrong_pred)),
    }
    if keep_top_losses:
        metrics["highest_losses"] = highest
    return metrics


def _keep_highest(kept: dict | None, images, labels, probs, losses, offset: int, k: int) -> dict:
    """The `k` highest-loss examples among those `kept` so far and this batch's (ties: earlier first)."""
    order = np.argsort(-losses, kind="stable")[:k]  # only the batch's own top k can make the cut
    batch = {
        "index": offset + order, "loss": losses[order], "true": labels[order],
        "predicted": probs[order].argmax(axis=1), "probability": probs[order].max(axis=1),
        "true_probability": probs[order, labels[order]], "image": images[order],
    }
    if kept is not None:
        batch = {key: np.concatenate([kept[key], value]) for key, value in batch.items()}
    best = np.argsort(-batch["loss"], kind="stable")[:k]
    return {key: value[best] for key, value in batch.items()}


def write_metrics(path: str, metrics: dict) -> None:
    """``metrics.json`` outside a run directory (`RunDir.write_metrics` inside one)."""
    write_json_atomic(path, {k: v for k, v in metrics.items() if k != "misclassified"}, indent=2)


def fine_tune_start(run_dir: str) -> int | None:
    """The epoch (0-based, as in ``history.csv``) at which a run's fine-tuning phase began.

    Read from the phase files (`tfresnet.training.phases`): the ``train`` phase stores the epoch
    the next one starts at, which early stopping may have moved before the configured one. None
    when the run has no finished fine-tuning phase.
    """
    from tfresnet.training import backups, phases

    if not os.path.exists(phases.phase_file(run_dir, "finetune")):
        return None
    state = backups.read_state(phases.phase_file(run_dir, "train")) or {}
    start = state.get("next_epoch")
    return int(start) if start is not None else None


def learning_curves(history: pd.DataFrame, fine_tune_epoch: int | None = None):
    """The loss and accuracy curves against whole epochs, as a matplotlib figure.

    Args:
        history: ``history.csv``'s rows (``epoch`` 0-based; plotted from 1).
        fine_tune_epoch: the 0-based epoch fine-tuning started at (`fine_tune_start`): a
            vertical line labelled "fine-tuning starts" sits just before it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [k for k in ("loss", "accuracy") if k in history]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    epochs = history["epoch"] + 1
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        if fine_tune_epoch is not None:
            ax.axvline(fine_tune_epoch + 0.5, color="0.4", linestyle="--", label="fine-tuning starts")
        ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
        # min_n_ticks=1: with the default 2, a one-epoch plot falls back to ticks 0.6, 0.8, 1.0 ...
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_run(run_dir: str, history: pd.DataFrame, metrics: dict, class_names: list[str]) -> list[str]:
    """Writes learning curves, the confusion matrix and a grid of misclassified images, each titled with its split.

    The learning curves mark where fine-tuning started, read from `run_dir`'s phase files.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if not history.empty:
        fig = learning_curves(history, fine_tune_start(run_dir))
        written.append(save_figure(fig, os.path.join(run_dir, "learning_curves.png")))

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
    written.append(save_figure(fig, os.path.join(run_dir, "confusion_matrix.png")))

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
        written.append(save_figure(fig, os.path.join(run_dir, "misclassified.png")))
    return written


def save_figure(fig, path: str) -> str:
    """Writes a matplotlib figure as a PNG at 100 dpi, all at once, and closes it; returns `path`."""
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
