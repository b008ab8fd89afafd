"""The learning-curves plot (`tfresnet.training.report`): whole-epoch ticks, and where fine-tuning starts."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from tfresnet.training import phases, report


def _history(epochs: int) -> pd.DataFrame:
    loss = np.linspace(1.0, 0.5, epochs)
    return pd.DataFrame({"epoch": range(epochs), "loss": loss, "accuracy": 1 - loss / 2,
                         "val_loss": loss + 0.1, "val_accuracy": 0.9 - loss / 2})


def _visible_ticks(ax):
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


def test_one_epoch_run_has_whole_epoch_ticks_and_no_fine_tuning_line():
    import matplotlib.pyplot as plt

    fig = report.learning_curves(_history(1))
    try:
        for ax in fig.axes:
            ticks = _visible_ticks(ax)
            assert ticks == [1.0], ticks  # not 0.96, 0.98, 1.00 ...
            assert not [line for line in ax.get_lines() if line.get_label() == "fine-tuning starts"]
    finally:
        plt.close(fig)


def test_fine_tuning_line_read_from_the_phase_files(tmp_path):
    import matplotlib.pyplot as plt

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    run_dir = str(tmp_path)
    phases.save_finished(model, run_dir, "train", next_epoch=3, checkpoint_best=None)  # early-stopped at 3 of 5
    assert report.fine_tune_start(run_dir) is None  # phase 2 has not finished
    phases.save_finished(model, run_dir, "finetune", next_epoch=7, checkpoint_best=None)
    assert report.fine_tune_start(run_dir) == 3
    fig = report.learning_curves(_history(7), report.fine_tune_start(run_dir))
    try:
        for ax in fig.axes:
            line, = [line for line in ax.get_lines() if line.get_label() == "fine-tuning starts"]
            assert list(line.get_xdata()) == [3.5, 3.5]  # between epoch 3 (last of phase 1) and 4
            assert all(float(t).is_integer() for t in _visible_ticks(ax))
            assert "fine-tuning starts" in [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        plt.close(fig)
    metrics = {"confusion_matrix": [[1, 0], [0, 1]], "accuracy": 1.0, "misclassified": ([], [], [])}
    written = report.plot_run(run_dir, _history(7), metrics, ["a", "b"])
    assert [p.rsplit("/", 1)[-1] for p in written] == ["learning_curves.png", "confusion_matrix.png"]
