"""Precise batch norm (`TrainConfig.precise_bn`): moving statistics re-estimated, weights fixed.

A batch-norm layer's moving mean and variance are an exponential average (Keras' momentum 0.99)
of the batch statistics of weights that kept moving: after a short run they still hold most of
their starting values and describe weights of hundreds of steps ago. One epoch of
``mnist_resnet`` scored 0.18 on the test digits with them and 0.93 with batch statistics (issue
25). Wu and Johnson ("Rethinking 'Batch' in BatchNorm", 2021, sec. 3) re-estimate them once the
weights are fixed, as Detectron2/fvcore's ``PreciseBN`` and PyTorch's ``swa_utils.update_bn`` do:

- N batches go through the model in training mode, so every layer normalises with its batch's
  statistics and the layers above see what they saw while training;
- each layer's moving mean and variance become the *average* of its N batch means and batch
  variances (Keras' batch variance, the biased one its moving variance averages), not a
  momentum-lagged average.

During the passes every layer's momentum is 0, so after each batch its moving statistics *are*
that batch's (Keras computes ``moving * momentum + batch * (1 - momentum)``); they are summed in
float64, averaged and written, and the momenta restored. `keras.ops` and eager calls only: it
runs on every backend, for any model whose batch-norm layers `batch_norm_layers` finds.

A frozen batch-norm layer (a frozen backbone's, or ``trainable=False``) normalises with its
moving statistics in training too: they are what the layers above were trained with, so it is
left as it is. Dropout and stochastic depth are on during the passes, as during training (and
in the two references).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable

import keras
import numpy as np

from tfresnet.training import averaging

__all__ = ["PreciseBNResult", "batch_norm_layers", "estimate", "TrainingBatches", "PreciseBN", "note", "refine_run"]


@dataclasses.dataclass(frozen=True)
class PreciseBNResult:
    """What one re-estimation did: ``layers`` re-estimated over ``batches`` in ``seconds``."""

    layers: int
    batches: int
    seconds: float

    def as_dict(self) -> dict:
        """JSON-ready, for ``metrics.json``."""
        return {"layers": self.layers, "batches": self.batches, "seconds": round(self.seconds, 2)}


def batch_norm_layers(model) -> list:
    """The batch-norm layers that train in `model`, nested models (``.layers``) included."""
    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        # Renorm layers update their statistics another way; frozen ones keep theirs.
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable and not layer.renorm:
            found.append(layer)
        stack.extend(getattr(layer, "layers", ()))
    return found


def _as_input(batch):
    """The images of a batch (``images`` or ``(images, labels)``) as the backend's tensor."""
    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    return keras.ops.convert_to_tensor(np.asarray(images))


def estimate(model, batches: Iterable, *, steps: int) -> PreciseBNResult:
    """Sets every training batch-norm layer's moving statistics to their average over `steps` batches.

    Args:
        model: a Keras model (the weights are left as they are; only the moving statistics of
            `batch_norm_layers` change).
        batches: images, or ``(images, labels)`` pairs; the first `steps` are used.
        steps: how many batches to average over.

    Returns:
        A `PreciseBNResult` (``layers=0`` when the model has no batch-norm layer that trains:
        then nothing is read or changed).

    Raises:
        ValueError: when `steps` < 1 or `batches` yields none.
    """
    if steps < 1:
        raise ValueError(f"precise batch norm needs at least one batch. Received steps={steps!r}")
    layers = batch_norm_layers(model)
    if not layers:
        return PreciseBNResult(0, 0, 0.0)
    started = time.perf_counter()
    momenta = [layer.momentum for layer in layers]
    means = [np.zeros(layer.moving_mean.shape, "float64") for layer in layers]
    variances = [np.zeros(layer.moving_variance.shape, "float64") for layer in layers]
    count = 0
    try:
        for batch in itertools.islice(batches, steps):
            if not count:  # only once there is a batch: none leaves the statistics as they were
                for layer in layers:
                    layer.momentum = 0.0
                    # Finite starting values: 0 * inf or 0 * NaN (a diverged run) would stay NaN.
                    layer.moving_mean.assign(keras.ops.zeros(layer.moving_mean.shape, layer.moving_mean.dtype))
                    layer.moving_variance.assign(keras.ops.ones(layer.moving_variance.shape,
                                                                layer.moving_variance.dtype))
            model(_as_input(batch), training=True)
            for k, layer in enumerate(layers):
                means[k] += keras.ops.convert_to_numpy(layer.moving_mean)
                variances[k] += keras.ops.convert_to_numpy(layer.moving_variance)
            count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if not count:
        raise ValueError("precise batch norm got no batch to estimate the statistics on.")
    for layer, mean, variance in zip(layers, means, variances):
        layer.moving_mean.assign((mean / count).astype(layer.moving_mean.dtype))
        layer.moving_variance.assign((variance / count).astype(layer.moving_variance.dtype))
    return PreciseBNResult(len(layers), count, time.perf_counter() - started)


def note(result: PreciseBNResult) -> str:
    """The one line a run prints about a re-estimation."""
    if not result.layers:
        return "precise_bn: the model has no batch-norm layer that trains; nothing was re-estimated."
    return (f"precise_bn: {result.layers} batch-norm layers re-estimated over {result.batches} training "
            f"batches in {result.seconds:.1f} s")


class TrainingBatches:
    """The batches statistics are estimated on: the training split, unaugmented, shuffled.

    Unaugmented because the model is evaluated and served on unaugmented images: the statistics
    should be theirs. Read through a pipeline of its own (`load()` gives a `DatasetBundle`, loaded
    at the first use), so the run's training split keeps its order; each pass is keyed by an
    epoch number (`DatasetBundle.set_epoch`), so a resumed run reads the batches an uninterrupted
    one read.

    Args:
        load: returns the bundle whose training split to read.
        steps: batches per estimate.
    """

    def __init__(self, load: Callable[[], object], steps: int):
        self._load, self._bundle = load, None
        self.steps = steps

    def __call__(self, epoch: int) -> Iterable:
        """The first `steps` batches of the unaugmented training split's pass `epoch`."""
        if self._bundle is None:
            self._bundle = self._load()
        self._bundle.set_epoch(epoch)
        return iter(self._bundle.train.take(self.steps))


class PreciseBN(keras.callbacks.Callback):
    """Re-estimates the statistics before each epoch's validation (``precise_bn_each_epoch``).

    Put it after the callback that puts the validated weights in the model (the average, with
    ``ema``): its `on_test_begin` must see them. Without validation data it does nothing: the
    training metrics use batch statistics, and the run re-estimates after training anyway.

    Args:
        batches: a `TrainingBatches`.
        model: the model to run the batches through (the trained one without its teacher or
            train-step augmentation: the same layers); default the model `fit` trains.
    """

    def __init__(self, batches: TrainingBatches, *, model=None):
        super().__init__()
        self.batches, self.target = batches, model
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_test_begin(self, logs=None):
        estimate(self.target or self.model, self.batches(self._epoch), steps=self.batches.steps)


def refine_run(model, run_dir: str, config, batches: TrainingBatches, *, epoch: int) -> dict:
    """After training: re-estimates the kept weights' statistics and, with ``ema``, the other
    set's file's (`averaging.refined_other_set`); prints `note`.

    Args:
        model: the model to save, the kept weights in it.
        run_dir: the run directory.
        config: the run's `TrainConfig` (nothing is done without ``precise_bn``).
        batches: the `TrainingBatches` to read.
        epoch: keys the pass over the training split that is read.

    Returns:
        What ``metrics.json`` records: ``weights`` (the set evaluated) with ``ema``, and
        ``precise_bn`` (`PreciseBNResult.as_dict`) where it ran.
    """
    record = {} if config.ema is None else {"weights": config.ema_weights}
    if not config.precise_bn:
        return record
    result = estimate(model, batches(epoch), steps=batches.steps)
    print(note(result), flush=True)
    if result.layers:
        averaging.refined_other_set(model, run_dir, config,
                                    lambda other: estimate(other, batches(epoch), steps=batches.steps))
    return {**record, "precise_bn": result.as_dict()}
