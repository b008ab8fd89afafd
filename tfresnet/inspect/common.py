"""What every diagnostic needs: a model's logits, a run's model and class names, images as the model takes them.

Diagnostics work on raw-pixel inputs ([0, 255], the model's own scaling is a layer inside it) and
on logits: a softmax that has saturated passes almost no gradient, so gradient ascent and attacks
through it stall (an ideal digit stopped near p = 0.8 through the softmax, p = 0.99 from the logits).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os

import keras
import numpy as np

__all__ = [
    "PIXEL_RANGE",
    "Subject",
    "LogitsView",
    "graph_model",
    "require_layer_graph",
    "image_shape",
    "logits_view",
    "logits_model",
    "load_subject",
    "resolve_class",
    "resolve_layer",
    "check_images",
    "load_image",
    "conv_layer_names",
    "spatial_layer_names",
    "choices_text",
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
        names_from: where the class names came from: ``"run"``, ``"file"`` (`--class-names` or a
            ``class_names.json`` beside a `.keras` file), ``"imagenet"`` (1000 outputs and no
            other names), or None (none known: the class ids as strings).
        notes: what a user should know about the names (e.g. ImageNet's unavailable offline).
    """

    model: keras.Model
    class_names: list
    source: str
    names_from: str | None = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def image_shape(self) -> tuple:
        """The H x W x C the model takes."""
        return tuple(self.model.input_shape[1:])


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def image_shape(model: keras.Model) -> tuple | None:
    """The H x W x C a model takes, or None for a subclassed model (which records none)."""
    try:
        return tuple(model.input_shape[1:])
    except AttributeError:
        return None


def graph_model(model: keras.Model, input_shape=None) -> keras.Model:
    """`model` as a functional graph: ``.input``, ``.output`` and each layer's ``.output`` defined.

    A functional model (keras.applications, registry models) is returned as it is. A Sequential
    model keeps its graph under ``inputs``/``outputs`` but defines no ``.input`` (Keras 3.15), so
    a functional twin over the same layers and tensors is returned. A subclassed model has no
    graph at all: it is called on a symbolic input of `input_shape`, which gives a graph with the
    model as one layer (its outputs are reachable, its inner layers' are not).

    Raises:
        ValueError: for a subclassed model without `input_shape`, or an unbuilt Sequential one.
    """
    return _graph_and_copies(model, input_shape)[0]


def _graph_and_copies(model: keras.Model, input_shape=None) -> tuple[keras.Model, list]:
    """`graph_model`, and the (model's layer, its copy) pairs where the graph had to copy layers."""
    inputs = getattr(model, "inputs", None)  # a subclassed model has no such attribute
    if isinstance(model, keras.Sequential):
        if not inputs:
            raise ValueError(f"Sequential model {model.name!r} is not built: start it with "
                             f"keras.Input(shape) or call it on a batch first.")
        layers = model.layers
        chained = (layers[0].input is inputs[0] and layers[-1].output is model.outputs[0]
                   and all(b.input is a.output for a, b in itertools.pairwise(layers)))
        if chained:
            return keras.Model(inputs[0], model.outputs[0], name=model.name), []
        # A loaded Sequential model builds its graph more than once, so its layers' first outputs
        # (what `layer.output` reads) belong to graphs it no longer uses: copy it, weights and all.
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        pairs = [(a, b) for a, b in zip(model.layers, clone.layers) if a.weights]
        return keras.Model(clone.inputs[0], clone.outputs[0], name=model.name), pairs
    if inputs:
        return model, []
    if input_shape is None:
        raise ValueError(
            f"Model {model.name!r} is a subclassed keras.Model, which records no input shape: pass "
            f"input_shape=(H, W, C)."
        )
    symbolic = keras.Input(tuple(input_shape))
    return keras.Model(symbolic, model(symbolic), name=model.name), []


def require_layer_graph(model: keras.Model, what: str) -> None:
    """Raises when `model`'s inner layers have no graph whose outputs `what` could read.

    Raises:
        ValueError: for a subclassed model, saying why and what to pass instead.
    """
    if getattr(model, "inputs", None) is None and not isinstance(model, keras.Sequential):
        raise ValueError(
            f"{what} reads the outputs of a model's inner layers, but {model.name!r} is a "
            f"subclassed keras.Model: its layers run inside its call() and leave no graph to read "
            f"them from. Pass a functional or Sequential model built from the same layers, e.g. "
            f"inputs = keras.Input(shape); model = keras.Model(inputs, outputs)."
        )


@dataclasses.dataclass
class LogitsView:
    """A model seen as raw pixels in, logits out (`logits_view`).

    Attributes:
        net: the functional model computing the logits.
        squashing: what was left off: ``"softmax"``, ``"sigmoid"``, or None (the model's outputs
            already are logits).
        rebuilt: ``(model's layer, its copy in net)`` pairs: layers whose squashing activation
            had to be removed by rebuilding them, or that were copied with a Sequential model
            (see `graph_model`); their weights are copies.
    """

    net: keras.Model
    squashing: str | None
    rebuilt: list


class _LogProbabilities(keras.layers.Layer):
    """log p: logits up to a constant per example (softmax(log p) = p) for a model whose softmax is hidden."""

    def call(self, probabilities):
        return keras.ops.log(keras.ops.maximum(probabilities, 1e-37))


def logits_view(model: keras.Model, input_shape=None) -> LogitsView:
    """The same network with its final softmax (or sigmoid) left off, and what was left off.

    Handles a classifier layer with a squashing activation (``Dense(..., activation="softmax")``),
    a separate ``Activation("softmax")`` layer, and the float32 ``linear`` cast that mixed
    precision adds after either. A model that already ends in logits is returned as it is. A model
    whose last layer is itself a model (a subclassed model, a nested head) hides its activation:
    if its outputs are probabilities (non-negative rows summing to 1 on noise) their log is taken,
    which are the logits up to a constant per example; a saturated softmax passes little gradient
    there, so such a model is best written to return logits.

    Args:
        model: a functional, Sequential or subclassed classifier.
        input_shape: H x W x C, needed only for a subclassed model (see `graph_model`).

    Raises:
        ValueError: if the model's output is not a single layer's output.
    """
    graph, copies = _graph_and_copies(model, input_shape)
    tail = graph.layers[-1]
    # Skip identity casts (mixed precision's float32 output layer).
    while isinstance(tail, keras.layers.Activation) and _activation_name(tail) == "linear":
        tail = _inbound_layer(graph, tail)
    if isinstance(tail, keras.Model):
        if not _outputs_probabilities(graph):
            return LogitsView(graph, None, copies)
        logits = _LogProbabilities(name=f"{tail.name}_log")(graph.output)
        return LogitsView(keras.Model(graph.input, logits, name=f"{model.name}_logits"), "softmax", copies)
    name = _activation_name(tail)
    if name not in _SQUASHING:
        return LogitsView(graph, None, copies)
    if isinstance(tail, keras.layers.Activation):
        return LogitsView(keras.Model(_model_input(graph), tail.input, name=f"{model.name}_logits"), name,
                          copies)
    config = {**tail.get_config(), "activation": "linear", "name": f"{tail.name}_logits",
              "dtype": "float32"}
    linear = tail.__class__.from_config(config)
    outputs = linear(tail.input)
    linear.set_weights(tail.get_weights())
    source = {id(copy): original for original, copy in copies}.get(id(tail), tail)
    copies = [(a, b) for a, b in copies if b is not tail] + [(source, linear)]
    return LogitsView(keras.Model(_model_input(graph), outputs, name=f"{model.name}_logits"), name, copies)


def logits_model(model: keras.Model, input_shape=None) -> keras.Model:
    """The same network with its final softmax (or sigmoid) left off: raw pixels in, logits out.

    See `logits_view`. The returned model shares no variables with `model` when its last layer
    had to be rebuilt (its weights are copied), so rebuild it after `model` trains.

    Raises:
        ValueError: if the model's output is not a single layer's output, or for a subclassed
            model without `input_shape`.
    """
    return logits_view(model, input_shape).net


def _outputs_probabilities(graph: keras.Model) -> bool:
    shape = tuple(graph.input_shape[1:])
    if any(dim is None for dim in shape):
        return False
    noise = np.random.default_rng(0).uniform(*PIXEL_RANGE, (2, *shape)).astype("float32")
    out = keras.ops.convert_to_numpy(graph(noise, training=False)).astype("float64")
    return out.ndim == 2 and out.shape[1] > 1 and bool(
        (out >= 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))


def _model_input(model):
    # One input tensor, not a list of one: calling the result with a bare array then matches its
    # structure.
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
    expected = image_shape(model) or (None, None, None)  # a subclassed model: any size
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
        ids = [i for i, name in enumerate(names) if name == value]
        if len(ids) > 1:
            # ImageNet names two classes "crane" (the bird, 134; the machine, 517) and two "maillot".
            raise ValueError(
                f"Class name {value!r} is shared by {len(ids)} classes, ids {', '.join(map(str, ids))}: "
                f"pass the id of the one you mean."
            )
        return ids[0]
    elif isinstance(value, str) and value.lstrip("-").isdigit():
        index = int(value)
    else:
        close = difflib.get_close_matches(str(value), names, n=3)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(
            f"Unknown class {value!r}.{hint} Valid classes: {choices_text(names)} "
            f"(or an index 0-{len(names) - 1})."
        )
    if not 0 <= index < len(names):
        raise ValueError(
            f"Class index {index} is out of range: the model has {len(names)} classes "
            f"(0-{len(names) - 1}: {choices_text(names)})."
        )
    return index


def choices_text(names, limit: int = 12) -> str:
    """The first `limit` of `names`, comma-separated, with the count when there are more."""
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


def spatial_layer_names(model: keras.Model) -> list[str]:
    """`conv_layer_names` without 1 x 1 maps and zero padding: the feature maps worth looking at.

    keras.applications' MobileNet keeps its pooled features and its classifier as 1 x 1 x C maps
    (``avg_pool``, ``conv_preds``): feature maps in shape only, with nowhere to point. A padding
    layer's borders are zeros, not features.
    """
    names = []
    for name in conv_layer_names(model):
        layer = model.get_layer(name)
        height, width = tuple(layer.output.shape)[1:3]
        if isinstance(layer, keras.layers.ZeroPadding2D):
            continue
        if height is None or width is None or height * width > 1:
            names.append(name)
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
        f"{choices_text(conv_layer_names(model), 8)}."
    )


def load_subject(source: str, *, input_shape=None, num_classes: int | None = None, seed: int = 0,
                 class_names=None) -> Subject:
    """A finished run's model, a `.keras` file, or an untrained registry model, with its class names.

    Class names come from, in order: `class_names`; the run's ``class_names.json``, or the one
    beside a `.keras` file; ImageNet's for a model with 1000 outputs (see
    `tfresnet.inspect.classnames`); else the class ids. Names that do not fit the outputs are
    ignored, with a note in `Subject.notes`.

    Args:
        source: a run directory (its `model.keras` and `class_names.json`), a `.keras` file, or
            a name from `tfresnet.list_models()` (untrained: e.g. gradient flow at initialisation).
        input_shape: for a registry name: the input shape (default: the variant's own).
        num_classes: for a registry name: output classes (default 10).
        seed: for a registry name: the seed of its initial weights.
        class_names: a list of names, or a file of them (a JSON list or one name per line).

    Raises:
        FileNotFoundError: for a run directory without `model.keras`, or a missing names file.
        ValueError: for a name that is neither a path nor a registered model, or a bad names file.
    """
    from tfresnet.inspect.classnames import SIBLING_FILE, class_names_for, read_class_names

    model, sibling = _load_model(source, input_shape=input_shape, num_classes=num_classes, seed=seed)
    if class_names is not None:
        where = f"--class-names {class_names}" if isinstance(class_names, str) else "class_names"
        names = read_class_names(class_names) if isinstance(class_names, str) else list(class_names)
        origin = "file"
    elif sibling is not None and os.path.isfile(os.path.join(sibling, SIBLING_FILE)):
        where = os.path.join(sibling, SIBLING_FILE)
        names, origin = read_class_names(where), ("run" if os.path.isdir(source) else "file")
    else:
        where, names, origin = "", None, None
    found = class_names_for(int(model.output_shape[-1]), names, origin, where=where)
    return Subject(model, found.names, source, found.origin, found.notes)


def _load_model(source: str, *, input_shape, num_classes, seed) -> tuple[keras.Model, str | None]:
    """The model of `source`, and the folder where its class names may lie (None for a registry name)."""
    from tfresnet.models.registry import create_model
    from tfresnet.runs import RunDir, load_keras

    if os.path.isdir(source):
        try:
            return RunDir(source).load_model(), source  # safe mode: a run from elsewhere runs no code
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err} Or give a .keras file or a registry model name.") from None
    if source.endswith(".keras"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"Model file not found: {source}")
        return load_keras(source), os.path.dirname(os.path.abspath(source))
    keras.utils.set_random_seed(seed)
    kwargs = {"num_classes": num_classes or 10, "preprocessing": "auto"}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    return create_model(source, **kwargs), None  # ValueError with the closest names for a typo


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
