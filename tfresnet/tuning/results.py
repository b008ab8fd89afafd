"""A search's results: one DataFrame row per trial, its CSV, its plot and TensorBoard's HParams setup.

`results_frame` reads the oracle's trials (KerasTuner's ``trial.json``: hyperparameters, status,
best-epoch metrics, failure traceback) and this package's per-trial record (wall time, tuner id,
parameters). `plot_search` draws the objective per trial with the running best, and the
objective against each searched hyperparameter, failed trials marked along the bottom.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from tfresnet.tuning import kt_compat
from tfresnet.tuning.space import TUNER_PREFIX
from tfresnet.tuning.tuners import TRIAL_RECORD

__all__ = ["results_frame", "best_epoch", "failure_reason", "plot_search", "format_table", "write_hparams_config"]

_TABLE_REASON_CHARS = 60


def failure_reason(message: str | None) -> str:
    """The last line of a failed trial's traceback: ``ExceptionType: message``."""
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def best_epoch(trial) -> int:
    """The epoch of a completed trial's best score, counted from 1 as in Keras' log.

    KerasTuner records the 0-based epoch index Keras passes to its callbacks (``best_step``).
    """
    return int(trial.best_step) + 1


def _record(project_dir: str, trial_id: str) -> dict:
    path = os.path.join(project_dir, f"trial_{trial_id}", TRIAL_RECORD)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}  # a worker on a machine that does not share the run directory


def results_frame(oracle, project_dir: str, space: list[str]) -> pd.DataFrame:
    """One row per trial, in trial order.

    Columns: ``trial`` (the number KerasTuner's log gives it, from 1), ``trial_id`` (KerasTuner's
    id, which names its folders: ``trials/trial_ID``, ``tensorboard/ID``), ``status`` (COMPLETED
    or FAILED; RUNNING only for a search stopped mid-trial), the searched keys (`space`, in
    order), KerasTuner's own ``tuner/...`` values (Hyperband), the objective and the other
    metrics at the best epoch, ``best_epoch`` (counted from 1, as Keras' "Epoch 1/3"),
    ``wall_seconds``, ``parameters``, ``tuner_id`` and ``reason`` (why a trial failed).

    Args:
        oracle: the search's oracle (chief or single process).
        project_dir: KerasTuner's project folder (``RUN_DIR/trials``).
        space: the searched keys.
    """
    objective = oracle.objective.name
    rows = []
    for trial_id in sorted(oracle.trials, key=int):
        trial = oracle.trials[trial_id]
        values = trial.hyperparameters.values
        completed = trial.status == "COMPLETED"
        row = {"trial": kt_compat.trial_number(trial_id), "trial_id": trial_id, "status": trial.status}
        row.update({key: values.get(key) for key in space})
        row.update({key: value for key, value in values.items() if key.startswith(TUNER_PREFIX)})
        row[objective] = trial.score if completed else np.nan
        if completed:
            for name in sorted(trial.metrics.metrics):
                if name != objective:
                    row[name] = trial.metrics.get_last_value(name)
        row["best_epoch"] = best_epoch(trial) if completed else np.nan
        record = _record(project_dir, trial_id)
        row["wall_seconds"] = record.get("wall_seconds", np.nan)
        row["parameters"] = record.get("parameters", np.nan)
        row["tuner_id"] = record.get("tuner_id")
        row["reason"] = "" if completed else failure_reason(trial.message)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        # Metric columns appear only on completed rows; keep the bookkeeping columns last.
        tail = ["best_epoch", "wall_seconds", "parameters", "tuner_id", "reason"]
        frame = frame[[c for c in frame.columns if c not in tail] + tail]
        for column in ("best_epoch", "parameters"):  # integers, blank where a trial failed
            frame[column] = frame[column].astype("Int64")
    return frame


def format_table(frame: pd.DataFrame) -> str:
    """The results as a console table: numbers to 4 significant digits, reasons shortened."""
    if frame.empty:
        return "(no trials)"
    shown = frame.drop(columns=[c for c in ("tuner_id",) if c in frame and frame[c].nunique() <= 1])
    shown = shown.copy()
    if "reason" in shown:
        shown["reason"] = shown["reason"].map(
            lambda r: r if len(r) <= _TABLE_REASON_CHARS else r[: _TABLE_REASON_CHARS - 3] + "...")
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def _categorical(series: pd.Series) -> bool:
    return not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in series.dropna())


def _positions(series: pd.Series, choices: list) -> list:
    # A dict lookup: 64 and 64.0 (a column that pandas made float) find the same choice.
    index = {value: i for i, value in enumerate(choices)}
    return [index.get(value, np.nan) for value in series]


def plot_search(frame: pd.DataFrame, objective: str, space: dict, path: str, *, direction: str = "max") -> str:
    """Draws the search: the objective per trial (running best as a line) and the objective
    against each searched hyperparameter; failed trials are red crosses along the bottom.

    Args:
        frame: `results_frame` output.
        objective: the objective column.
        space: the search space (`TrainConfig.tune`), for axis scales.
        path: PNG to write.
        direction: ``"max"`` or ``"min"``, for the running best.

    Returns:
        `path`.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    keys = [k for k in space if k in frame]
    panels = 1 + len(keys)
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    done = frame[frame["status"] == "COMPLETED"]
    failed = frame[frame["status"] != "COMPLETED"]
    _plot_trials(axes[0][0], frame, done, failed, objective, direction)
    for index, key in enumerate(keys, start=1):
        _plot_hyperparameter(axes[index // cols][index % cols], key, space[key], frame, done, failed, objective)
    for extra in range(panels, rows * cols):
        axes[extra // cols][extra % cols].axis("off")
    fig.suptitle(f"{len(done)} completed, {len(failed)} failed of {len(frame)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_trials(ax, frame: pd.DataFrame, done: pd.DataFrame, failed: pd.DataFrame, objective: str,
                 direction: str) -> None:
    """The first panel of `plot_search`: the objective per trial and the running best."""
    order = frame["trial"]
    if not done.empty:
        ax.plot(done["trial"], done[objective], "o", label="trial")
        best = done[objective].cummax() if direction == "max" else done[objective].cummin()
        ax.step(done["trial"], best, where="post", label="best so far")
    if not failed.empty:
        # x in data units, y in axes units: along the bottom whatever the objective's range.
        ax.plot(failed["trial"], [0.03] * len(failed), "x", color="tab:red",
                label="failed", transform=ax.get_xaxis_transform())
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.set_title("objective per trial")
    if len(order):
        ax.set_xticks(sorted(order)[:: max(1, len(order) // 10)])
    ax.legend(fontsize=8)


def _plot_hyperparameter(ax, key: str, domain, frame: pd.DataFrame, done: pd.DataFrame,
                         failed: pd.DataFrame, objective: str) -> None:
    """A panel of `plot_search`: the objective against hyperparameter `key` (its `domain` in
    the search space sets the axis)."""
    from matplotlib.ticker import NullFormatter

    if _categorical(frame[key]):
        choices = list(dict.fromkeys(domain if isinstance(domain, list) else frame[key]))
        labels = [str(v) for v in choices]
        x_done, x_failed = _positions(done[key], choices), _positions(failed[key], choices)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=20, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        x_done, x_failed = done[key], failed[key]
        if isinstance(domain, dict):
            low, high = domain["min"], domain["max"]
            if domain.get("sampling", "linear") != "linear":
                ax.set_xscale("log")
                ax.set_xlim(low / 1.2, high * 1.2)
                # Labelled minor ticks of a short log axis overlap one another.
                ax.xaxis.set_minor_formatter(NullFormatter())
            else:
                pad = 0.04 * (high - low)
                ax.set_xlim(low - pad, high + pad)
    if not done.empty:
        ax.plot(x_done, done[objective], "o", alpha=0.8)
    if not failed.empty:
        ax.plot(x_failed, [0.03] * len(failed), "x", color="tab:red", transform=ax.get_xaxis_transform())
    ax.set_xlabel(key)
    ax.set_ylabel(objective)


def write_hparams_config(logdir: str, space, objective: str) -> None:
    """Writes the HParams experiment (the searched domains and the metrics) at the root of the
    search's TensorBoard logs, so TensorBoard's HParams tab lists every trial's session, which
    KerasTuner logs under ``logdir/TRIAL_ID/execution0`` when a TensorBoard callback is given.

    Args:
        logdir: the search's TensorBoard folder.
        space: the oracle's `HyperParameters` space.
        objective: the objective's name (``val_accuracy``); its ``val_`` prefix names the group.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    hparams = kt_compat.hparams_domains(space, hparams_api)
    group, name = ("validation", objective[len("val_"):]) if objective.startswith("val_") else ("train", objective)
    metrics = [hparams_api.Metric(f"epoch_{name}", group=group, display_name=objective)]
    if name != "loss":
        metrics.append(hparams_api.Metric("epoch_loss", group=group, display_name=f"{group} loss"))
    with tf.summary.create_file_writer(logdir).as_default():
        hparams_api.hparams_config(hparams=hparams, metrics=metrics)
