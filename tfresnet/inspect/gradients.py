"""Gradient flow: how strongly the loss pulls on each layer's weights, from the input side to the output.

Nielsen, "Neural Networks and Deep Learning", chapter 5, measures the norm of the cost gradient
of each layer's biases for sigmoid networks at initialisation and finds it falling by about 4x per
layer towards the input (0.003, 0.017, 0.070, 0.285 for [784, 30, 30, 30, 30, 10], over 1,000
training digits): the vanishing gradient problem. He et al., "Deep Residual Learning for Image
Recognition" (2015), section 4.1, argue that their plain nets' degradation is *not* vanishing
gradients, because batch normalisation keeps them healthy; the functions here let either claim be
measured rather than assumed.

- `gradient_norms`: one row per trainable weight (depth, layer, weight, norms) for one model and
  a batch of labelled images; nothing about the model changes.
- `GradientFlow`: a callback that records the same table every K optimizer steps of a `fit`
  into ``RUN_DIR/gradient_flow.csv`` and plots it when training ends.
- `plot_gradient_norms`, `plot_gradient_flow`: per-layer norm against depth; depth x step heatmap
  (`plot_gradient_flow_run` draws both from a run directory's CSV).
"""

from __future__ import annotations

import os
import random

import keras
import numpy as np
import pandas as pd

from tfresnet.checks import number
from tfresnet.inspect.autodiff import weight_gradients
from tfresnet.inspect.common import check_images, logits_view
from tfresnet.inspect.labels import integer_labels
from tfresnet.inspect.plotting import pyplot, save_figure
from tfresnet.models.common import iter_layers

__all__ = [
    "gradient_norms",
    "layer_norms",
    "GradientFlow",
    "plot_gradient_norms",
    "plot_gradient_flow",
    "plot_gradient_flow_run",
    "CSV_NAME",
]

CSV_NAME = "gradient_flow.csv"
HEATMAP_NAME = "gradient_flow.png"
LAYERS_PLOT_NAME = "gradient_flow_layers.png"

_COLUMNS = ["depth", "layer", "weight", "shape", "params", "grad_norm", "grad_rms",
            "weight_norm", "loss"]


# ------------------------------------------------------------------------------------ the loss


class _CrossEntropy:
    """The mean cross-entropy of a model, computed from its logits, with gradients for its weights.

    A model ending in softmax (every registry model by default) is differentiated through its
    logits, not its probabilities: through a saturated softmax the gradient of log(p) underflows
    (and Keras' loss on probabilities clips them at 1e-7 where it cannot recover the logits), so
    confidently wrong examples would add nothing and the norms would read low. `logits_model`
    gives the same network without the squashing; where it has to rebuild the last layer
    (``Dense(..., activation="softmax")``) that copy has variables of its own, so its gradients
    are mapped back onto the model's own layer, weight by weight, and its weights are refreshed
    from the model before every measurement.

    The loss matches the output: softmax (or no squashing: the outputs are taken as logits)
    -> categorical cross-entropy of the integer labels; sigmoid -> binary cross-entropy of the
    one-hot labels summed over the output units (Nielsen's cross-entropy cost), or of the 0/1
    label for a single unit.
    """

    def __init__(self, model: keras.Model, input_shape=None):
        self.model = model
        # Rebuilding the last layer creates Keras initializers, which draw seeds from Python's
        # global `random`; restoring its state keeps a measured run's random stream, and so its
        # training, identical to an unmeasured one.
        state = random.getstate()
        try:
            view = logits_view(model, input_shape)
        finally:
            random.setstate(state)
        self.view = view.net
        self._copies = view.rebuilt
        self.kind = "sigmoid" if view.squashing == "sigmoid" else "softmax"
        self.units = int(self.view.output_shape[-1])

    def refresh(self) -> None:
        """Copies the model's current weights (and trainability) into the layers the view copied."""
        for source, copy in self._copies:
            copy.trainable = source.trainable
            copy.set_weights(source.get_weights())

    def model_variable(self) -> dict:
        """id of each trainable variable of the view -> the model's own variable it stands for."""
        mapping = {id(v): v for v in self.model.trainable_variables}
        for source, copy in self._copies:
            for theirs, ours in zip(copy.trainable_weights, source.trainable_weights):
                mapping[id(theirs)] = ours
        return mapping

    def __call__(self, labels, logits):
        from keras import ops

        logits = ops.cast(logits, "float32")  # mixed precision: the loss in float32, as in fit
        if self.kind == "softmax":
            return ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        targets = (ops.one_hot(labels, self.units) if self.units > 1
                   else ops.expand_dims(ops.cast(labels, "float32"), -1))
        per_unit = ops.binary_crossentropy(targets, logits, from_logits=True)
        return ops.mean(ops.sum(per_unit, axis=-1))


# ------------------------------------------------------------------------------ gradient norms


def _check_labels(y, n: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"y must be {n} integer class labels, one per image (not one-hot: pass "
            f"y.argmax(axis=1)). Received y with shape {labels.shape}"
        )
    top = max(num_classes, 2) - 1  # one sigmoid unit: labels 0 and 1
    labels = integer_labels(labels, "y", "labels", top, (
        f"y holds label {{value}} at position {{position}}: the model has {num_classes} output "
        f"units, so labels must be in 0..{top}."))
    return labels.astype(np.int32)


def _weight_layers(model: keras.Model) -> list:
    """Layers that hold trainable weights, input side first; nested models are looked into."""
    return [layer for layer in iter_layers(model)
            if not isinstance(layer, keras.Model) and layer.trainable_weights]


def gradient_norms(
    model: keras.Model,
    x,
    y,
    *,
    batches: int = 1,
    batch_size: int | None = None,
    training: bool = True,
) -> pd.DataFrame:
    """The norm of the cross-entropy gradient of each trainable weight, input side first.

    The gradient is that of the mean cross-entropy over the examples used (the data term only:
    L2 penalties in `model.losses` are left out, so models with different `l2` compare). With
    ``batches > 1`` the examples are split into that many consecutive batches of `batch_size`,
    the gradient of each batch's mean loss is taken, and those gradients are averaged, element
    by element, before norms are taken. For equal batches this *is* the gradient of the mean
    loss over all of them (the mean is linear), e.g. Nielsen's gradient of the cost over 1,000
    training digits, measured in pieces small enough for memory. The exception is a network with
    batch normalisation in training mode: each batch is then normalised by its own statistics,
    as the optimizer sees it, so the average is of per-batch gradients.

    Nothing about the model changes: weights, batch-norm statistics and random states are read,
    never written (`tfresnet.inspect.autodiff.weight_gradients`).

    Args:
        model: a classifier taking raw-pixel images (softmax or sigmoid outputs, or logits).
        x: images (N, H, W, C) as the model takes them (raw pixels in [0, 255]).
        y: N integer class labels.
        batches: how many batches to average the gradient over.
        batch_size: examples per batch; None splits the first ``N // batches * batches``
            examples into `batches` equal batches.
        training: run the model in training mode (batch norm on batch statistics, dropout
            on), as the optimizer sees it; False for inference mode.

    Returns:
        A DataFrame with one row per trainable weight, in the order of `model.layers`:
        ``depth`` (0 for the layer nearest the input, one depth per layer with trainable
        weights), ``layer``, ``weight`` (the variable's short name: kernel, bias, gamma, beta,
        depthwise_kernel, ...), ``shape``, ``params``, ``grad_norm`` (L2 norm of the gradient),
        ``grad_rms`` (``grad_norm / sqrt(params)``, comparable across layer sizes),
        ``weight_norm`` and ``loss`` (the mean loss the gradient is of).

    Raises:
        ValueError: for images the model does not take, labels that are not N class ids in
            range, or more batches than there are examples.
    """
    x = check_images(model, x)
    loss = _CrossEntropy(model, x.shape[1:])
    labels = _check_labels(y, len(x), loss.units)
    batches = number(batches, "batches", integer=True)
    batch_size = number(batch_size, "batch_size", integer=True, optional=True)
    if batch_size is None:
        batch_size = len(x) // batches
    if batch_size < 1 or batches * batch_size > len(x):
        raise ValueError(
            f"{batches} batches of {batch_size or 1} need {batches * max(batch_size, 1)} examples; "
            f"x has {len(x)}. Received batches={batches}, batch_size={batch_size}"
        )
    return _measure(loss, x, labels, batches=batches, batch_size=batch_size, training=training)


def _measure(loss: _CrossEntropy, x, labels, *, batches: int, batch_size: int,
             training: bool) -> pd.DataFrame:
    """`gradient_norms` on checked inputs, with a prepared (and refreshed) loss."""
    model = loss.model
    total, losses = None, []
    for index in range(batches):
        part = slice(index * batch_size, (index + 1) * batch_size)
        value, grads = weight_gradients(loss.view, loss, x[part], labels[part], training=training)
        losses.append(value)
        grads = [np.asarray(g, dtype=np.float64) for g in grads]
        total = grads if total is None else [t + g for t, g in zip(total, grads)]
    by_variable = {}
    mapping = loss.model_variable()
    for variable, grad in zip(loss.view.trainable_variables, total):
        by_variable[id(mapping[id(variable)])] = grad / batches

    rows = []
    for depth, layer in enumerate(_weight_layers(model)):
        for variable in layer.trainable_weights:
            grad = by_variable.get(id(variable))
            if grad is None:  # a variable the loss cannot reach (e.g. a layer off the output path)
                grad = np.zeros(tuple(variable.shape))
            params = int(np.prod(variable.shape))
            norm = float(np.linalg.norm(grad))
            rows.append({
                "depth": depth,
                "layer": layer.name,
                "weight": variable.name,
                "shape": "x".join(str(d) for d in variable.shape),
                "params": params,
                "grad_norm": norm,
                "grad_rms": norm / np.sqrt(params),
                "weight_norm": float(np.linalg.norm(keras.ops.convert_to_numpy(variable)
                                                    .astype(np.float64))),
                "loss": float(np.mean(losses)),
            })
    return pd.DataFrame(rows, columns=_COLUMNS)


def layer_norms(frame: pd.DataFrame, *, weight: str | None = None, by=None) -> pd.DataFrame:
    """One norm per layer (and per record) from `gradient_norms` rows.

    Args:
        frame: rows of `gradient_norms` (or `GradientFlow`'s CSV).
        weight: keep only this weight of each layer (e.g. ``"bias"``, Nielsen's measure);
            ``"kernels"`` keeps every convolution and dense kernel (so batch-norm layers, whose
            gamma and beta gradients are far smaller, drop out of the picture); None combines
            every weight of a layer into one norm (root of the sum of squares).
        by: column(s) that tell records apart (e.g. ``"step"``, ``"model"``); None for one record.

    Returns:
        A DataFrame with the `by` columns, ``depth``, ``layer`` and ``grad_norm``, ordered by
        record then depth.
    """
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    if weight is None:
        rows = frame
    elif weight == "kernels":
        rows = frame[frame["weight"].str.endswith("kernel")]
    else:
        rows = frame[frame["weight"] == weight]
    if rows.empty:
        have = sorted(frame["weight"].unique())
        raise ValueError(f"No {weight!r} weights in the frame; its weights: {have}.")
    squared = rows.assign(grad_norm=rows["grad_norm"] ** 2)
    grouped = squared.groupby([*keys, "depth", "layer"], sort=False, as_index=False)["grad_norm"].sum()
    grouped["grad_norm"] = np.sqrt(grouped["grad_norm"])
    return grouped


# ----------------------------------------------------------------------------------------- plots


def plot_gradient_norms(
    frame: pd.DataFrame,
    path: str,
    *,
    by: str | None = None,
    weight: str | None = "kernels",
    title: str | None = None,
) -> str:
    """Per-layer gradient norm against depth (log scale), one line per record or model.

    Args:
        frame: rows of `gradient_norms`, possibly several records told apart by a column.
        path: the PNG to write.
        by: the column naming the lines; None picks ``"model"``, else ``"step"``, when present.
        weight: which weights, as in `layer_norms`: ``"kernels"`` (default: convolution and
            dense kernels), ``"bias"`` (Nielsen's measure), None (all of a layer's weights).
        title: the plot title.

    Returns:
        `path`.
    """
    if by is None:
        by = next((c for c in ("model", "step") if c in frame.columns), None)
    norms = layer_norms(frame, weight=weight, by=by)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups = [(None, norms)] if by is None else list(norms.groupby(by, sort=False))
    colours = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")  # distinct up to 20 lines
    for index, (key, group) in enumerate(groups):
        label = None if key is None else (f"{by} {key}" if by == "step" else str(key))
        ax.plot(group["depth"], group["grad_norm"], marker="o", markersize=3, label=label,
                color=colours(index % colours.N))
    ax.set_yscale("log")
    ax.set_xlabel("depth (layer with weights; 0 = nearest the input)")
    ax.set_ylabel(f"||gradient|| ({weight or 'all weights'})")
    ax.set_title(title or "Gradient norm per layer")
    ax.grid(True, which="both", alpha=0.3)
    if by is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def plot_gradient_flow(frame: pd.DataFrame, path: str, *, weight: str | None = "kernels",
                       title: str | None = None) -> str:
    """A depth x step heatmap of log10 per-layer gradient norms from `GradientFlow`'s CSV.

    Args:
        frame: the CSV's rows (columns ``phase``, ``step`` and those of `gradient_norms`).
        path: the PNG to write.
        weight: as in `layer_norms`.
        title: the plot title.

    Returns:
        `path`.
    """
    frame = _latest_records(frame)
    records = list(dict.fromkeys(zip(frame["phase"], frame["step"])))
    norms = layer_norms(frame, weight=weight, by=["phase", "step"])
    depth_names = norms.drop_duplicates("depth").set_index("depth")["layer"]
    table = norms.pivot(index="depth", columns=["phase", "step"], values="grad_norm").reindex(
        index=depth_names.index, columns=pd.MultiIndex.from_tuples(records))
    grid = np.log10(table.where(table > 0)).to_numpy(dtype=float)  # a zero norm: no colour

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, max(3.0, min(12.0, 0.18 * len(depth_names) + 1.5))))
    image = ax.imshow(grid, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label="log10 ||gradient||")
    ticks = np.unique(np.linspace(0, len(records) - 1, min(len(records), 10)).astype(int))
    ax.set_xticks(ticks, [str(records[i][1]) for i in ticks])
    ax.set_xlabel("optimizer step")
    if len(depth_names) <= 30:
        ax.set_yticks(range(len(depth_names)), list(depth_names), fontsize=7)
    ax.set_ylabel("depth (input at the bottom)")
    ax.set_title(title or f"Gradient flow ({weight or 'all weights'} per layer)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _latest_records(frame: pd.DataFrame) -> pd.DataFrame:
    # A resumed run measures again the steps after its last backup: keep the last measurement.
    return frame.drop_duplicates(["phase", "step", "layer", "weight"], keep="last")


# -------------------------------------------------------------------------------------- callback


class GradientFlow(keras.callbacks.Callback):
    """Records `gradient_norms` on a fixed probe batch every `every` optimizer steps of a `fit`.

    Rows go to ``RUN_DIR/gradient_flow.csv`` (columns ``phase``, ``step``, ``epoch`` and those of
    `gradient_norms`), appended and flushed after every record, so a crash loses nothing. The
    first record is taken when training begins (step 0, before any update), then at every
    multiple of `every` steps. When training ends, ``gradient_flow.png`` (depth x step heatmap,
    log10 colour scale) and ``gradient_flow_layers.png`` (per-layer norm against depth, first
    and last record) are drawn from the whole CSV.

    Training is not changed: gradients are computed statelessly, so no weight, batch-norm
    statistic, optimizer slot or random state of the model moves. Each record costs one
    forward and backward pass over the probe batch outside the compiled training step.

    Args:
        x: the probe images (raw pixels), e.g. the first training batch.
        y: their labels: class ids, or one-hot / soft rows (their argmax is used).
        probe: instead of `x` and `y`, a function returning ``(x, y)``, called once when
            training begins (lets a caller defer loading the batch until it is needed).
        every: record every this many optimizer steps.
        run_dir: the folder the CSV and plots go to.
        training: measure in training mode, as the optimizer sees the model.
        phase: a label for this `fit` call, written in each row (runs of several phases).
        plot: draw the two PNGs when training ends.
    """

    def __init__(self, x=None, y=None, *, probe=None, every: int = 10, run_dir: str = ".",
                 training: bool = True, phase: str = "train", plot: bool = True):
        super().__init__()
        if (probe is None) == (x is None or y is None):
            raise ValueError("GradientFlow takes either x and y, or probe=FUNCTION returning (x, y).")
        self.every = number(every, "every", integer=True)
        self.run_dir = run_dir
        self.csv_path = os.path.join(run_dir, CSV_NAME)
        self.training = training
        self.phase = phase
        self.plot = plot
        self._probe = probe
        self._x, self._y = x, y
        self._step = self._epoch_start = self._last = 0
        self._epoch = 0
        self._loss = None
        self._recorded = False

    def on_train_begin(self, logs=None):
        if self._probe is not None:
            self._x, self._y = self._probe()
            self._probe = None
        self._x = check_images(self.model, self._x, what="the probe images")
        labels = np.asarray(self._y)
        if labels.ndim == 2 and labels.shape[1] > 1:
            labels = labels.argmax(axis=1)
        self._loss = _CrossEntropy(self.model, self._x.shape[1:])
        self._y = _check_labels(labels, len(self._x), self._loss.units)
        self._recorded = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._recorded:
            # The first record is taken here rather than in on_train_begin: by now every
            # callback's on_train_begin has run, a backup restore included, so the step count
            # and the epoch of a resumed run are known.
            optimizer = getattr(self.model, "optimizer", None)
            self._step = int(np.asarray(optimizer.iterations)) if optimizer is not None else 0
        self._epoch = epoch
        self._epoch_start = self._step
        if not self._recorded:
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        # Counted here rather than read from the optimizer: the JAX trainer keeps the variables
        # detached from the model between syncs, and syncing every step would be slow.
        self._step = self._epoch_start + batch + 1
        if self._step // self.every > self._last // self.every:
            self._record()

    def on_train_end(self, logs=None):
        if self.plot and os.path.exists(self.csv_path):
            plot_gradient_flow_run(self.run_dir)

    def _record(self) -> None:
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX: put the latest weights back into the model's variables
            sync()
        self._loss.refresh()
        frame = _measure(self._loss, self._x, self._y, batches=1, batch_size=len(self._x),
                         training=self.training)
        frame.insert(0, "epoch", self._epoch)
        frame.insert(0, "step", self._step)
        frame.insert(0, "phase", self.phase)
        os.makedirs(self.run_dir, exist_ok=True)
        new = not os.path.exists(self.csv_path) or os.path.getsize(self.csv_path) == 0
        with open(self.csv_path, "a", encoding="utf-8") as f:
            frame.to_csv(f, header=new, index=False)
            f.flush()
            os.fsync(f.fileno())
        self._last = self._step
        self._recorded = True


def plot_gradient_flow_run(run_dir: str, *, weight: str | None = "kernels") -> list[str]:
    """Draws ``gradient_flow.png`` and ``gradient_flow_layers.png`` from a run's CSV.

    Args:
        run_dir: the run directory holding ``gradient_flow.csv``.
        weight: as in `layer_norms`; ``"kernels"`` falls back to all weights for a model
            without kernels.

    Returns:
        The paths written (none when the CSV has no rows: nothing was trainable).
    """
    frame = _latest_records(pd.read_csv(os.path.join(run_dir, CSV_NAME)))
    if frame.empty:
        return []
    if weight == "kernels" and not frame["weight"].str.endswith("kernel").any():
        weight = None
    name = os.path.basename(os.path.normpath(run_dir))
    heatmap = plot_gradient_flow(frame, os.path.join(run_dir, HEATMAP_NAME), weight=weight,
                                 title=f"Gradient flow: {name}")
    records = list(dict.fromkeys(zip(frame["phase"], frame["step"])))
    ends = {records[0], records[-1]}
    first_last = frame[[r in ends for r in zip(frame["phase"], frame["step"])]].copy()
    first_last["record"] = [f"{p} step {s}" if frame["phase"].nunique() > 1 else f"step {s}"
                            for p, s in zip(first_last["phase"], first_last["step"])]
    layers = plot_gradient_norms(first_last, os.path.join(run_dir, LAYERS_PLOT_NAME), by="record",
                                 weight=weight, title=f"Gradient norm per layer: {name}")
    return [heatmap, layers]
