"""What every diagnostic needs: a model's logits, a run's model and class names, images as the model takes them.

Diagnostics work on raw-pixel inputs ([0, 255], the model's own scaling is a layer inside it) and
on logits: a softmax that has saturated passes almost no gradient, so gradient ascent and attacks
through it stall (an ideal digit stopped near p = 0.8 through the softmax, p = 0.99 from the logits).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os

import keras
import numpy as np

__all__ = [
    "PIXEL_RANGE",
    "Subject",
    "logits_model",
    "load_subject",
    "resolve_class",
    "resolve_layer",
    "check_images",
    "load_image",
    "conv_layer_names",
]

PIXEL_RANGE = (0.0, 255.0)  # the raw-pixel range every tfresnet model takes

# Final activations whose input is the logit vector (or, for sigmoid, a per-class score's logit).
_SQUASHING = {"softmax", "sigmoid"}


@dataclasses.dataclass
class Subject:
    """A model to look inside, with what is known of its classes.

    Attributes:
        model: the Keras model (raw pixels in, class probabilities or logits out).
        class_names: one name per output unit.
        source: the run directory, `.keras` file or registry name it came from.
    """

    model: keras.Model
    class_names: list
    source: str

    @property
    def image_shape(self) -> tuple:
        """The H x W x C the model takes."""
        return tuple(self.model.input_shape[1:])


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def logits_model(model: keras.Model) -> keras.Model:
    """The same network with its final softmax (or sigmoid) left off: raw pixels in, logits out.

    Handles a classifier layer with a squashing activation (``Dense(..., activation="softmax")``),
    a separate ``Activation("softmax")`` layer, and the float32 ``linear`` cast that mixed
    precision adds after either. A model that already ends in logits is returned as it is. The
    returned model shares no variables with `model` when its last layer had to be rebuilt (its
    weights are copied), so rebuild it after `model` trains.

    Raises:
        ValueError: if the model's output is not a single layer's output.
    """
    tail = model.layers[-1]
    # Skip identity casts (mixed precision's float32 output layer).
    while isinstance(tail, keras.layers.Activation) and _activation_name(tail) == "linear":
        tail = _inbound_layer(model, tail)
    name = _activation_name(tail)
    if name not in _SQUASHING:
        return model
    if isinstance(tail, keras.layers.Activation):
        return keras.Model(_model_input(model), tail.input, name=f"{model.name}_logits")
    config = {**tail.get_config(), "activation": "linear", "name": f"{tail.name}_logits",
              "dtype": "float32"}
    linear = tail.__class__.from_config(config)
    outputs = linear(tail.input)
    linear.set_weights(tail.get_weights())
    return keras.Model(_model_input(model), outputs, name=f"{model.name}_logits")


def _model_input(model):
    # One input tensor, not a list of one: calling the result with a bare array then matches its
    # structure. `model.inputs` (not `model.input`) also works for a Sequential model.
    inputs = model.inputs
    return inputs[0] if len(inputs) == 1 else inputs


def _inbound_layer(model, layer):
    # Public API only: the producer is the layer whose output tensor is this layer's input.
    for candidate in model.layers:
        if candidate is not layer and candidate.output is layer.input:
            return candidate
    raise ValueError(f"Cannot find the layer feeding {layer.name!r} in model {model.name!r}.")


def check_images(model: keras.Model, x, *, what: str = "x") -> np.ndarray:
    """Returns `x` as a float32 batch the model takes, or raises naming the mismatch.

    Raises:
        ValueError: for the wrong rank, height, width or number of channels.
    """
    x = np.asarray(x, dtype="float32")
    expected = tuple(model.input_shape[1:])
    if x.ndim != len(expected) + 1:
        raise ValueError(
            f"{what} must be a batch of images of shape (N, {', '.join(map(str, expected))}). "
            f"Received {what} with shape {x.shape}"
        )
    for axis, (got, want) in enumerate(zip(x.shape[1:], expected), start=1):
        if want is not None and got != want:
            part = "channels" if axis == len(expected) else ("height", "width")[axis - 1]
            raise ValueError(
                f"{what} has {got} {part}; model {model.name!r} takes images of shape "
                f"{'x'.join(str(d) for d in expected)}. Received {what} with shape {x.shape}"
            )
    return x


def resolve_class(value, class_names) -> int:
    """A class given by name or index, as an index.

    Raises:
        ValueError: naming the value and the valid choices.
    """
    names = [str(n) for n in class_names]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        index = int(value)
    elif isinstance(value, str) and value in names:
        return names.index(value)
    elif isinstance(value, str) and value.lstrip("-").isdigit():
        index = int(value)
    else:
        close = difflib.get_close_matches(str(value), names, n=3)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(
            f"Unknown class {value!r}.{hint} Valid classes: {_choices(names)} "
            f"(or an index 0-{len(names) - 1})."
        )
    if not 0 <= index < len(names):
        raise ValueError(
            f"Class index {index} is out of range: the model has {len(names)} classes "
            f"(0-{len(names) - 1}: {_choices(names)})."
        )
    return index


def _choices(names, limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the layers whose output is a 4-D feature map, input side first."""
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            names.append(layer.name)
    return names


def resolve_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The top-level layer called `name`.

    Raises:
        ValueError: naming the layer and the closest layer names of the model.
    """
    names = [layer.name for layer in model.layers]
    if name in names:
        return model.get_layer(name)
    close = difflib.get_close_matches(name, names, n=5)
    hint = f" Closest: {', '.join(close)}." if close else ""
    raise ValueError(
        f"Model {model.name!r} has no layer {name!r}.{hint} Its feature-map layers: "
        f"{_choices(conv_layer_names(model), 8)}."
    )


def load_subject(source: str, *, input_shape=None, num_classes: int | None = None, seed: int = 0) -> Subject:
    """A finished run's model, a `.keras` file, or an untrained registry model.

    Args:
        source: a run directory (its `model.keras` and `class_names.json`), a `.keras` file, or
            a name from `tfresnet.list_models()` (untrained: e.g. gradient flow at initialisation).
        input_shape: for a registry name: the input shape (default: the variant's own).
        num_classes: for a registry name: output classes (default 10).
        seed: for a registry name: the seed of its initial weights.

    Raises:
        FileNotFoundError: for a run directory without `model.keras`.
        ValueError: for a name that is neither a path nor a registered model.
    """
    import tfresnet.models  # noqa: F401  (registers the custom layers safe_mode needs)
    from tfresnet.models.registry import create_model

    if os.path.isdir(source):
        path = os.path.join(source, "model.keras")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{source} holds no model.keras: give a finished run directory (tfresnet train "
                f"writes model.keras at the end of a run), a .keras file or a registry model name."
            )
        model = _load_keras(path)
        names_path = os.path.join(source, "class_names.json")
        class_names = None
        if os.path.isfile(names_path):
            with open(names_path, encoding="utf-8") as f:
                class_names = json.load(f)
        return Subject(model, _class_names(model, class_names), source)
    if source.endswith(".keras"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"Model file not found: {source}")
        model = _load_keras(source)
        return Subject(model, _class_names(model, None), source)
    keras.utils.set_random_seed(seed)
    kwargs = {"num_classes": num_classes or 10, "preprocessing": "auto"}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    model = create_model(source, **kwargs)  # ValueError with the closest names for a typo
    return Subject(model, _class_names(model, None), source)


def _load_keras(path: str) -> keras.Model:
    # compile=False: diagnostics need neither optimizer nor loss; safe_mode stays on, because a
    # .keras file from elsewhere must not run code.
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _class_names(model, names) -> list:
    units = model.output_shape[-1]
    if names is None or len(names) != units:
        return [str(i) for i in range(units)]
    return [str(n) for n in names]


def load_image(path: str, image_shape: tuple, *, convert: bool = False) -> np.ndarray:
    """Reads an image file as the H x W x C float32 raw pixels a model of `image_shape` takes.

    The data layer's validation reads the file first, so odd formats (GIF, CMYK, PNG named
    .jpg) load as they do for training, and a broken file fails with the reason.

    Args:
        path: the image file.
        image_shape: the model's H x W x C; the image is resized to H x W (bilinear).
        convert: convert between grayscale and RGB when the file's channels differ from C.

    Raises:
        ValueError: for an unreadable file, or a channel mismatch without `convert`.
    """
    from PIL import Image

    from tfresnet.data.images import check_image

    check = check_image(path)
    if not check.ok:
        raise ValueError(f"Cannot read {path}: {check.reason}")
    height, width, channels = image_shape
    with Image.open(path) as im:
        im.seek(0)
        file_channels = 1 if im.mode in ("L", "1", "I", "I;16", "F") else 3
        if file_channels != channels and not convert:
            raise ValueError(
                f"{path} has {file_channels} channel{'s' if file_channels > 1 else ''}; the model "
                f"takes {channels} ({height}x{width}x{channels}). Pass --convert (convert=True) "
                f"to convert it."
            )
        converted = im.convert("L" if channels == 1 else "RGB")
    if height is not None and width is not None and converted.size != (width, height):
        converted = converted.resize((width, height), Image.BILINEAR)
    pixels = np.asarray(converted, dtype="float32")
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)
