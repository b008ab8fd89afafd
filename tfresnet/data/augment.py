"""Augmentation presets: named lists of Keras preprocessing layers, applied to training batches.

Presets are data (`AUGMENT_PRESETS`): each step is a ``(layer_name, kwargs)`` pair naming a class
in `keras.layers`, or ``("OneOf", [steps...])`` to apply one of several steps per batch (timm's
MixUp/CutMix switch). Steps whose layer the installed Keras lacks (MixUp, CutMix and RandAugment
arrived in Keras 3.6-3.8) are left out, and `Augmentation.missing` says which.

Images are float32 in [0, 255] here, so every layer with a ``value_range`` gets (0, 255); the
model's own `Preprocess` layer scales them afterwards. `tfresnet.data.load` applies the result to
the training split only, after batching (MixUp and CutMix mix the examples of a batch). The same
table drives the accelerator path: `tfresnet.training.augment` runs the layers `build_augmentation`
makes inside the train step instead (``TrainConfig.augment_on="model"``).

- ``light``: horizontal flips and small shifts.
- ``standard``: flips, small rotations, zooms and shifts, and contrast changes.
- ``strong``: flips, zoom, RandAugment (Cubuk et al. 2020, two ops at magnitude 0.5), then MixUp
  (Zhang et al. 2018) or CutMix (Yun et al. 2019), one per batch with equal odds. Mixing makes
  labels soft, so a bundle built with it carries one-hot labels in every split.
- ``mnist-shift``: shifts of at most one pixel (of a 28-pixel digit) with zero fill and nearest
  interpolation: the random-sampling version of the "expanded training data" in Nielsen's
  *Neural Networks and Deep Learning*, ch. 6, which adds four copies shifted one pixel up, down,
  left and right (here a shift may also be diagonal, or none).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfresnet import keras_compat

__all__ = ["AUGMENT_PRESETS", "EXPANSIONS", "Augmentation", "OneOf", "build_augmentation", "expand_arrays",
           "list_augmentations"]

_log = logging.getLogger(__name__)

_FLIP = ("RandomFlip", {"mode": "horizontal"})

AUGMENT_PRESETS: dict[str, tuple] = {
    "none": (),
    "light": (
        _FLIP,
        ("RandomTranslation", {"height_factor": 0.05, "width_factor": 0.05}),
    ),
    "standard": (
        _FLIP,
        ("RandomRotation", {"factor": 0.05}),  # +-18 degrees
        ("RandomZoom", {"height_factor": (-0.1, 0.1)}),
        ("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1}),
        ("RandomContrast", {"factor": 0.2, "value_range": (0, 255)}),
    ),
    "strong": (
        _FLIP,
        ("RandomZoom", {"height_factor": (-0.2, 0.2)}),
        ("RandAugment", {"value_range": (0, 255), "num_ops": 2, "factor": 0.5}),
        ("OneOf", [("MixUp", {"alpha": 0.2}), ("CutMix", {"factor": 1.0})]),
    ),
    "mnist-shift": (
        (
            "RandomTranslation",
            {
                "height_factor": 1 / 28,
                "width_factor": 1 / 28,
                "fill_mode": "constant",
                "fill_value": 0.0,
                "interpolation": "nearest",
            },
        ),
    ),
}

# Deterministic expansions of a training set, done once before training (unlike the random
# presets above): name -> (row, column) shifts, each adding one shifted copy of every image.
# "shift1" is Nielsen's expand_mnist.py (NNDL chapter 6): every digit moved one pixel up, down,
# left and right with zero fill, so 50,000 digits become 250,000.
EXPANSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    "shift1": ((-1, 0), (1, 0), (0, -1), (0, 1)),
}


def expand_arrays(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by one shifted copy of them per shift of `EXPANSIONS[name]`.

    Args:
        x: images (N, H, W[, C]); shifted pixels that leave the frame are dropped and the
            uncovered edge is filled with zeros (the background of MNIST).
        y: labels (N,), repeated for every copy.
        name: a key of `EXPANSIONS`.

    Returns:
        ``(x, y)`` with ``N * (1 + len(EXPANSIONS[name]))`` examples.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in EXPANSIONS:
        raise ValueError(f"Unknown expansion {name!r}; choose one of {list(EXPANSIONS)}.")
    copies = [x]
    for dy, dx in EXPANSIONS[name]:
        shifted = np.zeros_like(x)
        h, w = x.shape[1:3]
        shifted[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = (
            x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)])
        copies.append(shifted)
    return np.concatenate(copies), np.tile(y, len(copies))


# Layers that mix the labels of a batch: they need one-hot labels.
_LABEL_MIXING = frozenset({"MixUp", "CutMix"})


def list_augmentations() -> list[str]:
    """Returns the preset names."""
    return list(AUGMENT_PRESETS)


class OneOf:
    """Applies one of several layers per batch, chosen uniformly at random."""

    def __init__(self, layers: Sequence[keras.layers.Layer], seed: int | None):
        self.layers = list(layers)
        self.seed = seed

    def __call__(self, data, training=True, key=None):
        if key is not None:
            for i, layer in enumerate(self.layers):
                _reseed(layer, tf.random.experimental.stateless_fold_in(key, i + 1))
        if len(self.layers) == 1:
            return self.layers[0](data, training=training)
        if key is None:
            index = tf.random.uniform((), 0, len(self.layers), dtype=tf.int32, seed=self.seed)
        else:
            index = tf.random.stateless_uniform((), key, 0, len(self.layers), dtype=tf.int32)
        branches = [lambda layer=layer: layer(data, training=training) for layer in self.layers]
        return tf.switch_case(index, branches)

    def __repr__(self):
        return f"OneOf({', '.join(type(layer).__name__ for layer in self.layers)})"


class Augmentation:
    """A preset (or a list of layers) as one callable on a batch of ``(images, labels)``.

    Attributes:
        name: the preset's name, or ``"custom"``.
        steps: the layers applied, in order (`OneOf` groups included).
        missing: names of preset layers the installed Keras lacks, left out.
        mixes_labels: whether a step mixes labels (MixUp, CutMix): labels must be one-hot.
    """

    def __init__(self, name: str, steps: Sequence, missing: Sequence[str] = (), mixes_labels=False):
        self.name = name
        self.steps = list(steps)
        self.missing = tuple(missing)
        self.mixes_labels = bool(mixes_labels)

    def __call__(self, images, labels, key=None):
        """Augments a batch; `key` (a stateless seed, shape [2]) makes the draws a function of it.

        With a key, every random generator of the steps is set from it first, so the same key
        gives the same augmentation in any run (`tfresnet.data.pipeline` keys each batch by the
        seed, the epoch and its index). Calls with keys must not run in parallel: they share the
        generators.
        """
        data = {"images": images, "labels": labels}
        for index, step in enumerate(self.steps):
            if key is not None:
                step_key = tf.random.experimental.stateless_fold_in(key, index)
                if isinstance(step, OneOf):
                    data = step(data, training=True, key=step_key)
                    continue
                _reseed(step, step_key)
            data = step(data, training=True)
        # Interpolation and contrast can overshoot slightly; keep the [0, 255] contract. Keras
        # layers given a dict cast labels to float; unmixed labels stay the int32 ids they were.
        images = tf.clip_by_value(data["images"], 0.0, 255.0)
        return images, (data["labels"] if self.mixes_labels else labels)

    def __repr__(self):
        names = ", ".join(
            repr(step) if isinstance(step, OneOf) else type(step).__name__ for step in self.steps
        )
        return f"Augmentation({self.name!r}: {names or 'nothing'})"


def _reseed(layer, key) -> None:
    """Sets a Keras layer's random generators from a stateless key (one per generator)."""
    for i, state in enumerate(keras_compat.seed_generator_states(layer)):
        state.assign(tf.cast(tf.random.experimental.stateless_fold_in(key, i), state.dtype))


def _build_step(step, seed: int | None, missing: list[str]):
    name, spec = step
    if name == "OneOf":
        layers = [layer for sub in spec if (layer := _build_step(sub, seed, missing)) is not None]
        return OneOf(layers, seed) if layers else None
    cls = getattr(keras.layers, name, None)
    if cls is None:
        missing.append(name)
        return None
    return cls(**spec, seed=seed)


def _names(step) -> list[str]:
    name, spec = step
    return [n for sub in spec for n in _names(sub)] if name == "OneOf" else [name]


def build_augmentation(augment, *, seed: int | None = None) -> Augmentation | None:
    """Builds the training-time augmentation for `tfresnet.data.load`.

    Args:
        augment: a preset name from `AUGMENT_PRESETS`, None or ``"none"`` for no augmentation,
            a sequence of Keras preprocessing layers to apply in order, or an `Augmentation`
            (returned as it is).
        seed: seed of every random layer (None: unseeded).

    Returns:
        An `Augmentation`, or None when nothing is applied.

    Raises:
        ValueError: for an unknown preset name.
    """
    if augment is None or augment == "none":
        return None
    if isinstance(augment, Augmentation):
        return augment
    if isinstance(augment, str):
        if augment not in AUGMENT_PRESETS:
            raise ValueError(
                f"Unknown augmentation preset {augment!r}; expected one of "
                f"{list(AUGMENT_PRESETS)}. Received augment={augment!r}"
            )
        missing: list[str] = []
        steps = []
        for i, step in enumerate(AUGMENT_PRESETS[augment]):
            # One seed per step, so two layers of the same kind do not draw the same numbers.
            built = _build_step(step, None if seed is None else seed + i, missing)
            if built is not None:
                steps.append(built)
        if missing:
            _log.info(
                "Augmentation %r: keras %s lacks %s; left out.",
                augment, keras.__version__, ", ".join(missing),
            )
        used = {n for step in AUGMENT_PRESETS[augment] for n in _names(step)} - set(missing)
        return Augmentation(augment, steps, missing, mixes_labels=bool(used & _LABEL_MIXING))
    layers = list(augment)
    mixes = any(type(layer).__name__ in _LABEL_MIXING for layer in layers)
    return Augmentation("custom", layers, (), mixes_labels=mixes)
