"""Freezing and unfreezing by layer name, for transfer learning.

fastai's `fine_tune` in small steps: freeze the backbone -> fit the head -> unfreeze the top of
the backbone -> recompile -> fit at a lower rate. Two mistakes users report most with
keras.applications are ruled out here: batch-norm layers stay frozen, which in Keras means they
run in inference mode with their ImageNet statistics (unfrozen, they re-estimate statistics from
small batches and wreck the pretrained features), and the trainer always recompiles after a
change of `trainable` (without it the change is silently ignored).
"""

from __future__ import annotations

import keras

__all__ = ["head_layer_names", "freeze_backbone", "unfreeze_from", "trainable_layer_names"]


def head_layer_names(model: keras.Model, model_name: str, **build_kwargs) -> set[str]:
    """Names of the layers that `include_top=True` adds to the registry model `model_name`.

    Found by building the same model without its top: whatever that lacks is the head, for every
    family alike (ResNet's `predictions`, VGG's `fc1`/`fc2`, MobileNetV3's `conv_2`/`logits`).
    """
    from tfresnet.models.registry import create_model

    kwargs = {k: v for k, v in build_kwargs.items()
              if k not in ("include_top", "num_classes", "classifier_activation", "weights")}
    backbone = create_model(model_name, include_top=False, **kwargs)
    names = {layer.name for layer in backbone.layers}
    return {layer.name for layer in model.layers if layer.name not in names}


def _is_batch_norm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def freeze_backbone(model: keras.Model, head: set[str]) -> None:
    """Freezes every layer but those named in `head`."""
    unknown = head - {layer.name for layer in model.layers}
    if unknown:
        raise ValueError(f"Head layers not in {model.name!r}: {sorted(unknown)}")
    for layer in model.layers:
        layer.trainable = layer.name in head


def unfreeze_from(model: keras.Model, first_layer: str | None) -> None:
    """Makes `first_layer` and every later layer trainable, batch norm excepted.

    Args:
        model: the model whose backbone was frozen.
        first_layer: a layer name (e.g. ``"conv5_block1_1_conv"``, ``"block_13_expand"``);
            None unfreezes the whole backbone.

    Raises:
        ValueError: if `first_layer` is not a layer of `model`; the message names close ones.
    """
    names = [layer.name for layer in model.layers]
    if first_layer is None:
        start = 0
    elif first_layer in names:
        start = names.index(first_layer)
    else:
        import difflib

        close = difflib.get_close_matches(first_layer, names, n=5, cutoff=0.4)
        raise ValueError(
            f"fine_tune_from={first_layer!r} is not a layer of {model.name!r}. "
            f"Close names: {close}"
        )
    for index, layer in enumerate(model.layers):
        if index >= start and not _is_batch_norm(layer):
            layer.trainable = True
        if _is_batch_norm(layer):
            layer.trainable = False


def trainable_layer_names(model: keras.Model) -> list[str]:
    """Layers that currently hold trainable weights, in model order."""
    return [layer.name for layer in model.layers if layer.trainable_weights]
