"""Weight transfer from keras.applications, which is how ImageNet weights reach tfresnet models.

tfresnet's families reproduce keras.applications layer for layer, with the same layer names, so a
transfer is a copy by name. The files keras.applications publishes (`.h5`, Keras 2's layout:
one group per layer name) are read directly with h5py, so the model's own layers say what fits
and no keras.applications twin has to be built with the same ``alpha`` a second time. The copy
is strict: every weighted layer of the source must land in the target with the same shapes, so
a silent partial load cannot happen. Two differences are allowed and reported: a classifier the
target does not share (no top, or other classes: transfer learning), and a single-channel first
convolution, which receives the sum of the RGB kernels (the usual way to start a grayscale model
from RGB weights; the response to a gray image is unchanged).
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from tfresnet.models import pretrained
from tfresnet.models.common import iter_layers
from tfresnet.models.specs import get_model_spec, list_models

__all__ = ["load_keras_applications_weights", "load_weights", "check_weights", "TransferReport",
           "HEAD_LAYERS"]

# keras.applications' classifier layers (VGG's fc1/fc2, MobileNet v1's conv_preds, v3's logits):
# the only source layers a transfer may leave out, when the target has no such layer or another
# number of classes.
HEAD_LAYERS = frozenset({"predictions", "conv_preds", "logits", "fc1", "fc2"})


class TransferReport(dict):
    """What a transfer did: ``transferred``, ``not_in_source``, ``head_left_out`` and
    ``channel_summed`` layer names, and the ``source`` file or model."""

    def __repr__(self):
        return (
            f"TransferReport(transferred={len(self['transferred'])} layers, "
            f"not_in_source={self['not_in_source']}, head_left_out={self['head_left_out']}, "
            f"channel_summed={self['channel_summed']})"
        )


def _weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    return {layer.name: layer for layer in iter_layers(model)
            if layer.weights and not isinstance(layer, keras.Model)}


def _model_arrays(source: keras.Model) -> dict[str, list[tuple[str, np.ndarray]]]:
    return {name: [(w.name, keras.ops.convert_to_numpy(w)) for w in layer.weights]
            for name, layer in _weighted_layers(source).items()}


def _legacy_group(f):
    # Keras 2's layout: a `layer_names` attribute, at the top or under a whole model's .h5.
    group = f.get("model_weights", f)
    return group if "layer_names" in group.attrs else None


def _is_legacy_h5(path: str) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        return _legacy_group(f) is not None


def _legacy_h5_arrays(path: str) -> dict[str, list[tuple[str, np.ndarray]]] | None:
    """Layer name -> [(weight name, array)] of a Keras 2 weights file, or None for another layout."""
    import h5py

    with h5py.File(path, "r") as f:
        group = _legacy_group(f)
        if group is None:
            return None
        found = {}
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            weight_names = [w.decode() if isinstance(w, bytes) else str(w)
                            for w in group[name].attrs.get("weight_names", [])]
            if weight_names:
                # "conv1_bn/moving_mean:0" -> "moving_mean", Keras 3's variable name.
                found[name] = [(w.rsplit("/", 1)[-1].split(":")[0], np.asarray(group[name][w]))
                               for w in weight_names]
        return found


def _adapt(value: np.ndarray, target_shape: tuple) -> tuple[np.ndarray, bool] | None:
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
    return None


def _ordered(values: list[tuple[str, np.ndarray]], layer) -> list[tuple[str, np.ndarray]]:
    # By variable name where both sides name the same set, else in order (Keras keeps one order).
    by_name = dict(values)
    names = [w.name for w in layer.weights]
    return [(n, by_name[n]) for n in names] if sorted(by_name) == sorted(names) else values


def _layer_values(name, values, tgt) -> tuple[list, bool] | None:
    """The arrays for target layer `tgt`, or None when they do not fit (with whether summed)."""
    if len(values) != len(tgt.weights):
        return None
    out, summed = [], False
    for (_, value), tgt_w in zip(_ordered(values, tgt), tgt.weights):
        adapted = _adapt(value, tuple(tgt_w.shape))
        if adapted is None:
            return None
        out.append(adapted[0])
        summed |= adapted[1]
    return out, summed


def _mismatch(name: str, values, tgt) -> ValueError:
    src = [tuple(v.shape) for _, v in values]
    dst = [tuple(w.shape) for w in tgt.weights]
    which = repr(name) if name == tgt.name else f"{name!r} (paired in order with {tgt.name!r})"
    return ValueError(
        f"Layer {which}: source weights of shapes {src} do not fit the target's {dst}; the "
        f"architectures differ (check alpha, depth, input channels and num_classes)."
    )


def _is_imagenet_classifier(values) -> bool:
    return bool(values) and values[0][1].shape[-1] == pretrained.IMAGENET_CLASSES


def _pairs(arrays: dict, tgt_layers: dict) -> tuple[list, bool]:
    """(source name, arrays, target layer or None, is a classifier) for every source layer, and
    whether the layers were paired by position rather than by name.

    Most published files use keras.applications' layer names, so layers pair by name. Older ones
    (MobileNetV2's: ``mobl0_conv_0_depthwise`` for ``expanded_conv_depthwise``) name layers as
    Keras 2 once did; keras itself loads those by position, the file's weighted layers in order
    against the model's, and so does this, as strictly: the same count but for a classifier on
    either side, and every shape the same.
    """
    if not set(arrays) - set(tgt_layers) - HEAD_LAYERS:
        return [(name, values, tgt_layers.get(name), name in HEAD_LAYERS)
                for name, values in arrays.items()], False
    src, tgt = list(arrays.items()), list(tgt_layers.values())
    file_head = bool(src) and _is_imagenet_classifier(src[-1][1])
    target_head = bool(tgt) and tgt[-1].name in HEAD_LAYERS
    body_src, body_tgt = src[:len(src) - file_head], tgt[:len(tgt) - target_head]
    if len(body_src) != len(body_tgt):
        named = sorted(set(arrays) - set(tgt_layers) - HEAD_LAYERS)
        raise ValueError(
            f"{len(named)} weighted layers of the source have no layer of the same name in the "
            f"target, e.g. {named[:5]}, and pairing them in order fails too ({len(body_src)} "
            f"weighted layers against {len(body_tgt)}, classifiers aside); the models are not the "
            f"same architecture."
        )
    pairs = [(name, values, layer, False) for (name, values), layer in zip(body_src, body_tgt)]
    if file_head:
        pairs.append((*src[-1], tgt[-1] if target_head else None, True))
    return pairs, True


def _copy(arrays: dict, target: keras.Model, source_name: str) -> TransferReport:
    tgt_layers = _weighted_layers(target)
    pairs, by_order = _pairs(arrays, tgt_layers)
    assignments, summed, head_left_out = {}, [], []
    for name, values, tgt, is_head in pairs:
        fitted = None if tgt is None else _layer_values(name, values, tgt)
        if fitted is None:
            if is_head:  # an ImageNet classifier the target does not share
                head_left_out.append(name)
                continue
            raise _mismatch(name, values, tgt)
        assignments[tgt.name] = fitted[0]
        if fitted[1]:
            summed.append(tgt.name)
    # Assigned only once everything fits, so a failed transfer leaves the target as it was.
    for name, values in assignments.items():
        tgt_layers[name].set_weights(values)
    return TransferReport(
        transferred=sorted(assignments),
        not_in_source=sorted(set(tgt_layers) - set(assignments)),
        head_left_out=sorted(head_left_out),
        channel_summed=summed,
        source=source_name,
        by_position=by_order,
    )


def _has_imagenet_top(model: keras.Model) -> bool:
    heads = [layer for layer in model.layers if layer.name in HEAD_LAYERS and layer.weights]
    return bool(heads) and int(model.output_shape[-1]) == pretrained.IMAGENET_CLASSES


def _image_size(model: keras.Model) -> int | None:
    height, width = model.input_shape[1:3]
    return height if height == width else None


def imagenet_weights_path(application: str, arch: dict, *, include_top: bool, image_size: int | None,
                          what: str) -> str:
    """The local path of the ImageNet file that fits (downloaded if need be).

    Raises:
        ValueError: for a width, variant or resolution that keras.applications never published.
        ImageNetWeightsNotFound: offline without a local copy, naming the file and where to put it.
    """
    candidates = pretrained.imagenet_files(application, arch, include_top=include_top, image_size=image_size)
    return pretrained.resolve_imagenet_file(candidates, what)


def fetch_imagenet_weights(name: str, builder_kwargs: dict, *, image_size: int | None) -> str:
    """Makes sure the ImageNet file a new-classifier model `name` needs is here (see
    `imagenet_weights_path`); the trainer calls it before loading data, so a missing file
    fails in seconds rather than after the data are checked."""
    spec = get_model_spec(name)
    return imagenet_weights_path(spec.keras_application, architecture_kwargs(spec, builder_kwargs),
                                 include_top=False, image_size=image_size,
                                 what=f"{name!r} with weights='imagenet'")


def _build_twin(application: str, model: keras.Model, arch: dict, include_top: bool) -> keras.Model:
    constructor = getattr(keras.applications, application, None)
    if constructor is None:
        raise ValueError(f"keras.applications has no {application!r}.")
    kwargs = dict(arch)
    if application.startswith("MobileNetV3"):
        # tfresnet models carry input scaling as a separate, optional layer.
        kwargs.setdefault("include_preprocessing", False)
    height, width, _ = model.input_shape[1:]
    classes = int(model.output_shape[-1]) if include_top else 1000
    shape = (height, width, 3) if include_top else (None, None, 3)
    return constructor(weights=None, include_top=include_top, input_shape=shape, classes=classes, **kwargs)


def _keras3_file_arrays(path: str, model: keras.Model, application: str | None, arch: dict) -> dict:
    # A Keras 3 `.weights.h5` names layers by class and position, not by layer name, so it loads
    # only into the model that saved it: build that keras.applications model, then copy by name.
    if application is None:
        raise ValueError(
            f"{path} is a Keras 3 weights file, which loads only into the architecture that saved "
            f"it; pass application='MobileNetV2' (the keras.applications constructor) to say which."
        )
    errors = []
    for include_top in ([True, False] if any(layer.name in HEAD_LAYERS for layer in model.layers)
                        else [False]):
        twin = _build_twin(application, model, arch, include_top)
        try:
            twin.load_weights(path)
        except (ValueError, KeyError) as err:
            errors.append(f"include_top={include_top}: {err}")
            continue
        return _model_arrays(twin)
    raise ValueError(f"{path} does not hold weights of keras.applications.{application} "
                     f"{arch or ''}: " + "; ".join(errors))


def _spec_application(model: keras.Model) -> tuple[str | None, dict]:
    # `create_model` records the registry name, which `name=` does not change; a model loaded
    # from a file has only its name to go by.
    try:
        spec = get_model_spec(getattr(model, "registry_name", None) or model.name)
    except ValueError:  # not a registry name: the caller must say which application
        return None, {}
    return spec.keras_application, dict(spec.keras_application_kwargs)


def load_keras_applications_weights(
    model: keras.Model,
    source: Any,
    *,
    application: str | None = None,
    **application_kwargs: Any,
) -> TransferReport:
    """Copies every weight of a keras.applications model or weights file into a tfresnet model.

    Args:
        model: a tfresnet model built from the registry.
        source: a `keras.Model` from keras.applications; a keras.applications weights file as
            published (`.h5`, with or without the classifier: read by layer name, so no
            architecture argument is needed); a Keras 3 `.weights.h5` saved from a
            keras.applications model; or ``"imagenet"`` for the published ImageNet file (looked
            for in $TFRESNET_WEIGHTS_DIR and keras' cache, else downloaded).
        application: the keras.applications constructor name (``"ResNet50"``); by default the
            registry's entry for the model (``model.registry_name``, which `create_model` sets
            and ``name=`` leaves alone; else ``model.name``). Needed for ``"imagenet"`` and
            Keras 3 files.
        **application_kwargs: the architecture arguments of the source (``alpha``,
            ``minimalistic``, ``depth_multiplier``) for ``"imagenet"`` and Keras 3 files.

    Returns:
        A `TransferReport`. Layers ``not_in_source`` are left as they were (typically the new
        classifier when the source has no top or a different number of classes).

    Raises:
        ValueError: when the architectures differ, the file is not a weights file, or no
            keras.applications counterpart is known.
        ImageNetWeightsNotFound: when the ImageNet file is not local and cannot be downloaded,
            saying how to provide it.
    """
    if isinstance(source, keras.Model):
        return _copy(_model_arrays(source), model, repr(source.name))
    if application is None:
        application, defaults = _spec_application(model)
        application_kwargs = {**defaults, **application_kwargs}
    if isinstance(source, str) and source == "imagenet":
        if application is None:
            raise ValueError(
                f"Model {model.name!r} has no keras.applications counterpart in the registry; "
                f"pass application='ResNet50' (or the matching constructor) explicitly."
            )
        source = imagenet_weights_path(application, application_kwargs, include_top=_has_imagenet_top(model),
                                       image_size=_image_size(model),
                                       what=f"{model.name!r} with weights='imagenet'")
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file not found. Received source={source!r}")
    arrays = _legacy_h5_arrays(path) if _is_hdf5(path) else None
    if arrays is None:
        if not _is_hdf5(path):
            raise ValueError(f"{path} is not an HDF5 weights file (.h5 / .weights.h5).")
        arrays = _keras3_file_arrays(path, model, application, application_kwargs)
    return _copy(arrays, model, path)


def _is_hdf5(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


# Arguments of a keras.applications constructor that do not shape its weights.
_NOT_ARCHITECTURE = {"input_shape", "include_top", "weights", "classes", "pooling", "name",
                     "classifier_activation", "input_tensor", "dropout", "dropout_rate",
                     "include_preprocessing"}


def architecture_kwargs(spec, builder_kwargs: dict) -> dict:
    """The builder arguments that shape the keras.applications twin's weights (alpha, ...)."""
    import inspect

    params = inspect.signature(getattr(keras.applications, spec.keras_application)).parameters
    return {**spec.keras_application_kwargs,
            **{k: v for k, v in builder_kwargs.items() if k in params and k not in _NOT_ARCHITECTURE}}


def check_weights(weights: Any, spec, builder_kwargs: dict, *, include_top: bool,
                  image_size: int | None) -> None:
    """Checks a `weights` value without loading anything: a bad one fails before data loads.

    Raises:
        ValueError: for an unknown word, a missing or non-HDF5 file, ImageNet weights for a
            model without a keras.applications twin, or a width or resolution that was never
            published (naming the published ones).
    """
    if isinstance(weights, str) and weights == "imagenet":
        if spec.keras_application is None:
            raise ValueError(
                f"No ImageNet weights are available for {spec.name!r}: it has no keras.applications "
                f"counterpart (those with one: {', '.join(_with_twin())}). Received weights='imagenet'."
            )
        pretrained.imagenet_files(spec.keras_application, architecture_kwargs(spec, builder_kwargs),
                                  include_top=include_top, image_size=image_size)
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be None, 'imagenet' or a path to a weights file. "
                         f"Received weights={weights!r}")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        hint = "" if os.sep in path or path.endswith(".h5") else " (the only word it takes is 'imagenet')"
        raise ValueError(f"Weights file not found{hint}; expected None, 'imagenet' or a path to a "
                         f".h5 / .weights.h5 file. Received weights={weights!r}")
    if not _is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 weights file (.h5 / .weights.h5). "
                         f"Received weights={weights!r}")


def _with_twin() -> list[str]:
    return [name for name in list_models() if get_model_spec(name).keras_application]


def load_weights(model: keras.Model, weights: Any, spec=None, builder_kwargs=None) -> TransferReport | None:
    """Loads the `weights` argument of `create_model` into a freshly built model.

    Args:
        model: the model `create_model` just built.
        weights: ``"imagenet"``; a keras.applications file as published (``.h5``, with or
            without its classifier); or a tfresnet weights file (``model.save_weights(...)``,
            ``.weights.h5``) of the same architecture.
        spec: the model's `ModelSpec`.
        builder_kwargs: the arguments the model was built with; those that shape the
            keras.applications twin (``alpha``, ...) choose the ImageNet file.

    Returns:
        The `TransferReport` of a keras.applications transfer, None for a tfresnet file.

    Raises:
        ValueError: for anything else, or a file that does not fit the architecture.
        ImageNetWeightsNotFound: offline without the ImageNet file, naming it and where to put it.
    """
    check_weights(weights, spec, builder_kwargs or {}, include_top=_has_imagenet_top(model),
                  image_size=_image_size(model))
    if isinstance(weights, str) and weights == "imagenet":
        arch = architecture_kwargs(spec, builder_kwargs or {})
        return load_keras_applications_weights(model, "imagenet", application=spec.keras_application, **arch)
    path = os.fspath(weights)
    if _is_legacy_h5(path):
        return load_keras_applications_weights(model, path)
    model.load_weights(path)  # a Keras 3 file saved from a tfresnet model of this architecture
    return None
