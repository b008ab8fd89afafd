"""Augmentation on the accelerator: the presets of `tfresnet.data.augment`, run inside the train step.

With ``TrainConfig.augment_on="model"`` the input pipeline only decodes, caches (uint8), shuffles
and batches, and the batch is augmented where the model trains, by the same Keras preprocessing
layers the CPU path runs (`build_augmentation`, one table for both): a GPU then spends a few
elementwise and resampling kernels per batch instead of waiting for CPU cores to warp every image.

Why a train-step override on a copy of the registry model's graph, not augmentation layers in it:

- MixUp and CutMix change the labels, and a layer inside the model never sees them;
  `train_step` gets ``(images, labels)`` together;
- `DeviceAugmented` is built from the registry model's own inputs and outputs, so it *is* that
  graph: the same layer objects, names and weights. Freezing by name, checkpoints, backups and
  resume see the plain model's layers, and its ``.weights.h5`` files load into the plain model
  (and back); the generators of the augmentation are model variables, so backups keep their
  states and a resumed run continues their draws;
- nothing of the augmentation is in the graph, so `inference_model` (what `Session.save` writes
  as ``model.keras``, and so every export and `predict`) is the plain model, and evaluation and
  `predict` on the training object never augment.

TensorFlow backend only: JAX's train step is a pure function of its state, and these stateful
layers fail inside it (tried with Keras 3.15.1: RandomFlip raises in the jitted step), so
`check_backend` refuses before anything runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

if TYPE_CHECKING:
    from tfresnet.data.augment import Augmentation

# tfresnet.data (TensorFlow's tf.data) is imported where a preset is built, not here: the session
# imports this module, and it must import without TensorFlow on the JAX backend.

__all__ = ["AUGMENT_ON", "DeviceAugmented", "augment_batch", "check_backend", "with_augmentation",
           "inference_model", "allows_jit"]

# Where augmentation runs: in the tf.data pipeline on CPU cores, or in the train step.
AUGMENT_ON = ("data", "model")


def _layers(augmentation: Augmentation) -> list:
    from tfresnet.data.augment import OneOf

    return [layer for step in augmentation.steps
            for layer in (step.layers if isinstance(step, OneOf) else [step])]


def augment_batch(augmentation: Augmentation, images, labels, choice_seed=None):
    """One batch through the augmentation's steps, with `keras.ops` (on the model's device).

    The same steps as `Augmentation.__call__` on the CPU path, in the same order and on the same
    float32 [0, 255] images; a `OneOf` group picks its layer with `choice_seed` (a
    `keras.random.SeedGenerator`).

    Returns:
        ``(images, labels)``: images clipped to [0, 255]; labels mixed where a step mixes them
        (then one-hot float), else as given.
    """
    from tfresnet.data.augment import OneOf

    data = {"images": images, "labels": labels}
    for step in augmentation.steps:
        if isinstance(step, OneOf) and len(step.layers) > 1:
            index = keras.random.randint((), 0, len(step.layers), seed=choice_seed)
            branches = [lambda d, layer=layer: layer(d, training=True) for layer in step.layers]
            data = keras.ops.switch(index, branches, data)
        elif isinstance(step, OneOf):
            data = step.layers[0](data, training=True)
        else:
            data = step(data, training=True)
    mixed = keras.ops.cast(data["labels"], "float32") if augmentation.mixes_labels else labels
    return keras.ops.clip(data["images"], 0.0, 255.0), mixed


class DeviceAugmented(keras.Model):
    """A registry model's graph whose `fit` augments each training batch inside the train step.

    Build it as a functional model: ``DeviceAugmented(model.inputs, model.outputs,
    augmentation=..., seed=..., name=model.name)``.

    Args:
        augmentation: an `Augmentation` (`tfresnet.data.augment.build_augmentation`).
        seed: seed of the `OneOf` choice (the layers carry their own seeds).
    """

    def __init__(self, *args, augmentation: Augmentation, seed: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augmentation = augmentation
        # Tracked here so their generator states are model variables (backups, resume); not in
        # the graph, so not in `layers`, the saved model or any export.
        self.augmentation_layers = _layers(augmentation)
        self.choice_seed = keras.random.SeedGenerator(seed)

    def train_step(self, *args):
        """Keras' train step on the batch augmented (`augment_batch`); the arguments are Keras'."""
        # TensorFlow and PyTorch pass (data,), JAX (state, data): augment the data, keep the rest.
        *state, data = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = augment_batch(self.augmentation, x, y, self.choice_seed)
        return super().train_step(*state, keras.utils.pack_x_y_sample_weight(x, y, sample_weight))

    def inference_model(self) -> keras.Model:
        """The plain functional model over the same layers and weights, without augmentation."""
        return keras.Model(self.inputs, self.outputs, name=self.name)


def check_backend(augment_on: str) -> None:
    """Raises ValueError when ``augment_on="model"`` cannot run on this Keras backend."""
    if augment_on == "model" and keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"augment_on='model' augments inside TensorFlow's traced train step and needs "
            f"KERAS_BACKEND=tensorflow; the backend is {keras.backend.backend()!r}. Use "
            f"augment_on='data'. Received augment_on={augment_on!r}"
        )


def with_augmentation(model: keras.Model, augment, *, seed: int | None) -> keras.Model:
    """`model` as a `DeviceAugmented` that augments with `augment` (a preset name), or itself for none."""
    from tfresnet.data.augment import build_augmentation

    augmentation = build_augmentation(augment, seed=seed)
    if augmentation is None:
        return model
    return DeviceAugmented(model.inputs, model.outputs, augmentation=augmentation, seed=seed, name=model.name)


def inference_model(model: keras.Model) -> keras.Model:
    """The model to save, export and serve: `model` without its train-step augmentation."""
    return model.inference_model() if isinstance(model, DeviceAugmented) else model


def allows_jit(model: keras.Model) -> bool:
    """Whether XLA can compile `model`'s train step: not with layers Keras marks unsupported
    (RandomRotation, RandomTranslation, RandomZoom, RandomCrop warp with ops XLA lacks)."""
    if not isinstance(model, DeviceAugmented):
        return True
    return all(getattr(layer, "supports_jit", True) for layer in model.augmentation_layers)
