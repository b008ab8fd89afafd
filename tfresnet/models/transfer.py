"""Weight transfer from keras.applications, which is how ImageNet weights reach tfresnet models.

tfresnet's families reproduce keras.applications layer for layer, with the same layer names, so a
transfer is a copy by name. The copy is strict: every weighted layer of the source must land in
the target with the same shapes, so a silent partial load cannot happen. Two differences are
allowed and reported: a classifier head the source lacks (transfer learning to other classes),
and a single-channel first convolution, which receives the sum of the RGB kernels (the usual
way to start a grayscale model from RGB weights; the response to a gray image is unchanged).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import socket
from typing import Any

import keras
import numpy as np

from tfresnet.models.common import iter_layers

__all__ = ["load_keras_applications_weights", "load_weights", "TransferReport"]

# Bounds a download that a dead network would otherwise let hang.
_DOWNLOAD_TIMEOUT_S = 20


class TransferReport(dict):
    """What a transfer did: ``transferred``, ``not_in_source`` and ``channel_summed`` layer names."""

    def __repr__(self):
        return (
            f"TransferReport(transferred={len(self['transferred'])} layers, "
            f"not_in_source={self['not_in_source']}, channel_summed={self['channel_summed']})"
        )


def _weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    found = {}
    for layer in iter_layers(model):
        if layer.weights and not isinstance(layer, keras.Model):
            found[layer.name] = layer
    return found


def _adapt(value: np.ndarray, target_shape: tuple, layer_name: str) -> tuple[np.ndarray, bool]:
    if tuple(value.shape) == tuple(target_shape):
        return value, False
    # RGB -> grayscale first convolution: (kh, kw, 3, f) into (kh, kw, 1, f).
    if (
        value.ndim == 4
        and value.shape[2] == 3
        and target_shape[2] == 1
        and value.shape[:2] + value.shape[3:] == tuple(target_shape[:2]) + tuple(target_shape[3:])
    ):
        return value.sum(axis=2, keepdims=True), True
    raise ValueError(
        f"Layer {layer_name!r}: source weight of shape {tuple(value.shape)} does not fit the "
        f"target's {tuple(target_shape)}; the architectures differ (check alpha, depth, "
        f"input channels and num_classes)."
    )


def _copy_by_name(source: keras.Model, target: keras.Model) -> TransferReport:
    src_layers = _weighted_layers(source)
    tgt_layers = _weighted_layers(target)
    missing = sorted(set(src_layers) - set(tgt_layers))
    if missing:
        raise ValueError(
            f"{len(missing)} weighted layers of {source.name!r} have no layer of the same name in "
            f"{target.name!r}, e.g. {missing[:5]}; the models are not the same architecture."
        )
    summed = []
    for name, src in src_layers.items():
        tgt = tgt_layers[name]
        if len(src.weights) != len(tgt.weights):
            raise ValueError(
                f"Layer {name!r}: source has {len(src.weights)} weights, target "
                f"{len(tgt.weights)} (e.g. a bias on one side only)."
            )
        values = []
        for src_w, tgt_w in zip(src.weights, tgt.weights):
            value, was_summed = _adapt(keras.ops.convert_to_numpy(src_w), tgt_w.shape, name)
            values.append(value)
            if was_summed:
                summed.append(name)
        tgt.set_weights(values)
    return TransferReport(
        transferred=sorted(src_layers),
        not_in_source=sorted(set(tgt_layers) - set(src_layers)),
        channel_summed=summed,
    )


@contextlib.contextmanager
def _download_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _has_top(model: keras.Model) -> bool:
    return any(layer.name == "predictions" for layer in model.layers)


def _build_application(
    application: str, weights, *, include_top: bool, input_shape, classes: int, **kwargs
) -> keras.Model:
    constructor = getattr(keras.applications, application, None)
    if constructor is None:
        raise ValueError(f"keras.applications has no {application!r}.")
    if application.startswith("MobileNetV3"):
        # tfresnet models carry input scaling as a separate, optional layer.
        kwargs.setdefault("include_preprocessing", False)
    return constructor(
        weights=weights,
        include_top=include_top,
        input_shape=input_shape,
        classes=classes if include_top else 1000,
        **kwargs,
    )


def load_keras_applications_weights(
    model: keras.Model,
    source: Any,
    *,
    application: str | None = None,
    **application_kwargs: Any,
) -> TransferReport:
    """Copies every weight of a keras.applications model into the matching tfresnet model.

    Args:
        model: a tfresnet model built from the registry.
        source: a `keras.Model` from keras.applications; a path to its weights file (`.h5` or
            `.weights.h5`, with or without the classifier); or ``"imagenet"`` to download the
            ImageNet weights through keras.applications.
        application: the keras.applications constructor name (``"ResNet50"``); by default the
            registry's entry for ``model.name``. Needed only when `source` is not a model.
        **application_kwargs: arguments that shape the source model (``alpha``, ``minimalistic``,
            ``depth_multiplier``), when `source` is not a model.

    Returns:
        A `TransferReport`. Layers ``not_in_source`` are left as they were (typically the new
        classifier when the source has no top or a different number of classes).

    Raises:
        ValueError: when the architectures differ, or no keras.applications counterpart is known.
        RuntimeError: when ImageNet weights cannot be downloaded (no network), saying how to
            provide the file locally.
    """
    if isinstance(source, keras.Model):
        return _copy_by_name(source, model)
    if application is None:
        from tfresnet.models.registry import get_model_spec

        try:
            spec = get_model_spec(model.name)
        except ValueError:  # not a registry name: the caller must say which application
            spec = None
        application = spec.keras_application if spec else None
        if spec:
            application_kwargs = {**spec.keras_application_kwargs, **application_kwargs}
    if application is None:
        raise ValueError(
            f"Model {model.name!r} has no keras.applications counterpart in the registry; "
            f"pass application='ResNet50' (or the matching constructor) explicitly."
        )
    height, width, _ = model.input_shape[1:]
    target_top = _has_top(model)
    classes = int(model.output_shape[-1]) if target_top else 1000

    if isinstance(source, str) and source == "imagenet":
        # ImageNet heads have 1000 classes; any other head is trained anew.
        include_top = target_top and classes == 1000
        shape = (height, width, 3) if include_top else (None, None, 3)
        try:
            with _download_timeout(_DOWNLOAD_TIMEOUT_S):
                src = _build_application(
                    application, "imagenet", include_top=include_top, input_shape=shape,
                    classes=1000, **application_kwargs,
                )
        except Exception as err:  # keras raises a bare Exception on URL failures
            if "fetch failure" not in str(err) and not isinstance(err, OSError):
                raise
            cache = os.path.join(os.path.expanduser("~"), ".keras", "models")
            raise RuntimeError(
                f"Could not download the ImageNet weights of keras.applications.{application} "
                f"({err}). Without network access, download that file on a machine that has it "
                f"and either put it in {cache}/ (keras' cache) or pass weights=PATH / "
                f"source=PATH to load it from a file."
            ) from None
        return _copy_by_name(src, model)

    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file not found. Received source={source!r}")
    errors = []
    # A weights file may hold the classifier or not; the file itself does not say which.
    for include_top in ([True, False] if target_top else [False]):
        shape = (height, width, 3) if include_top else (None, None, 3)
        try:
            src = _build_application(
                application, None, include_top=include_top, input_shape=shape,
                classes=classes, **application_kwargs,
            )
            src.load_weights(path)
        except (ValueError, KeyError) as err:
            errors.append(f"include_top={include_top}: {err}")
            continue
        return _copy_by_name(src, model)
    raise ValueError(
        f"{path} does not hold weights of keras.applications.{application} "
        f"{application_kwargs or ''}: " + "; ".join(errors)
    )


# Arguments of a keras.applications constructor that do not shape its weights.
_NOT_ARCHITECTURE = {"input_shape", "include_top", "weights", "classes", "pooling", "name",
                     "classifier_activation", "input_tensor", "dropout", "dropout_rate",
                     "include_preprocessing"}


def _architecture_kwargs(application: str, builder_kwargs: dict) -> dict:
    """The builder arguments that the keras.applications constructor also takes (alpha, ...)."""
    params = inspect.signature(getattr(keras.applications, application)).parameters
    return {k: v for k, v in builder_kwargs.items() if k in params and k not in _NOT_ARCHITECTURE}


def load_weights(model: keras.Model, weights: Any, spec=None, builder_kwargs=None) -> None:
    """Loads the `weights` argument of `create_model` into a freshly built model.

    Args:
        model: the model `create_model` just built.
        weights: ``"imagenet"`` (through keras.applications, see
            `load_keras_applications_weights`) or a path to a tfresnet weights file
            (``model.save_weights(...)``, ``.weights.h5``) of the same architecture.
        spec: the model's `ModelSpec`.
        builder_kwargs: the arguments the model was built with; those that shape the
            keras.applications counterpart (``alpha``, ...) are forwarded to it.

    Raises:
        ValueError: for anything else, or a file that does not fit the architecture.
    """
    if isinstance(weights, str) and weights == "imagenet":
        if spec is None or spec.keras_application is None:
            name = spec.name if spec else model.name
            raise ValueError(
                f"No ImageNet weights are available for {name!r}: it has no keras.applications "
                f"counterpart. Received weights='imagenet'."
            )
        arch = {**spec.keras_application_kwargs,
                **_architecture_kwargs(spec.keras_application, builder_kwargs or {})}
        load_keras_applications_weights(model, "imagenet", application=spec.keras_application, **arch)
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"weights must be None, 'imagenet' or a path to a .weights.h5 file. Received weights={weights!r}"
        )
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file not found. Received weights={weights!r}")
    if not path.endswith(".weights.h5"):
        raise ValueError(
            f"weights= takes a Keras 3 '.weights.h5' file saved from a tfresnet model; for a "
            f"keras.applications file use tfresnet.models.load_keras_applications_weights(model, "
            f"path). Received weights={weights!r}"
        )
    model.load_weights(path)
