"""Feature maps: what each stage of a convolutional network computes for one image.

The picture of Zeiler and Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV
2014) and of keras.io's "Visualizing what convnets learn": early layers respond to edges and
strokes at full resolution, later ones to larger parts at coarser resolution. By default the
first convolution's output and then one map per spatial resolution are returned, the last one
computed at it (the output of each ResNet stage, of each VGG block's pool): the summary a reader
wants, where ``layers="all"`` gives every layer.
"""

from __future__ import annotations

import os
import re

import keras
import numpy as np

from tfresnet.checks import number
from tfresnet.inspect.common import (
    check_images,
    conv_layer_names,
    graph_model,
    image_shape,
    require_layer_graph,
    resolve_layer,
)
from tfresnet.inspect.plotting import pyplot, save_figure

__all__ = ["feature_maps", "plot_feature_maps", "one_image_batch"]


def feature_maps(model: keras.Model, image, layers=None) -> dict[str, np.ndarray]:
    """The feature maps of one image at chosen layers.

    Args:
        model: a functional or Sequential Keras model taking raw pixels in [0, 255] (a
            subclassed model has no graph of its inner layers to read: ValueError).
        image: one H x W x C image, raw pixels.
        layers: which layers:
            - None (default): the first layer with weights (the first convolution: edges and
              strokes), then the last layer at each spatial resolution larger than 1 x 1, i.e.
              the end of each stage (ResNet-20: ``conv1_conv``, ``conv2_block3_out``,
              ``conv3_block3_out``, ``conv4_block3_out``; MobileNet: ``conv_pw_13_relu`` last, not
              its 1 x 1 pooled features or classifier). Layers before the first with weights
              (input scaling) and zero-padding layers, whose borders are not features, are passed
              over. A model taking any input size has no static sizes to group by: then every layer.
            - ``"all"``: every layer with a 4-D output, input side first.
            - a layer name or a list of them.

    Returns:
        ``{layer name: H' x W' x channels float32 array}``, in the order of `layers` (by default
        input side first).

    Raises:
        ValueError: for an image of the wrong shape, a layer the model lacks (naming the closest
            ones), a layer whose output is not a 4-D feature map, or a subclassed model.
    """
    x = one_image_batch(model, image)
    require_layer_graph(model, "feature_maps")
    model = graph_model(model)
    if layers is None or (isinstance(layers, str) and layers == "all"):
        names = conv_layer_names(model)
        if layers is None:
            names = _stage_ends(model, names)
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names:
            raise ValueError("layers is empty: pass None (the end of each stage), 'all' or layer names.")
        for name in names:
            _check_feature_layer(model, name)
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    outputs = probe(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: keras.ops.convert_to_numpy(out)[0].astype("float32") for name, out in zip(names, outputs)}


def one_image_batch(model: keras.Model, image) -> np.ndarray:
    """One H x W x C image as the float32 batch of one that `model` takes.

    Raises:
        ValueError: naming the shape received and the shape the model takes.
    """
    image = np.asarray(image, dtype="float32")
    if image.ndim != 3:
        expected = "x".join(str(d) for d in image_shape(model) or ("H", "W", "C"))
        raise ValueError(f"image must be one H x W x C image ({expected} for model {model.name!r}). "
                         f"Received shape {image.shape}")
    return check_images(model, image[None], what="image")


def _check_feature_layer(model: keras.Model, name: str) -> None:
    layer = resolve_layer(model, name)
    shape = tuple(layer.output.shape)
    if len(shape) != 4:
        choices = conv_layer_names(model)
        raise ValueError(
            f"Layer {name!r} of model {model.name!r} outputs shape {shape}, not a feature map "
            f"(batch, height, width, channels). Feature-map layers: {', '.join(choices[:8])}"
            f"{', ...' if len(choices) > 8 else ''} (last: {choices[-1] if choices else 'none'})."
        )


def _stage_ends(model: keras.Model, names: list[str]) -> list[str]:
    """The first of `names` with weights, then the last of `names` at each spatial size above 1 x 1."""
    layers = [model.get_layer(name) for name in names]
    first = next((i for i, layer in enumerate(layers) if layer.weights), 0)
    if any(dim is None for layer in layers for dim in layer.output.shape[1:3]):
        # A model of any input size has no static sizes to group by: every layer is shown.
        return names
    last_at_size = {None: layers[first].name} if layers else {}
    for layer in layers[first:]:
        height, width = layer.output.shape[1:3]
        if isinstance(layer, keras.layers.ZeroPadding2D) or height * width == 1:
            continue
        last_at_size[tuple(layer.output.shape[1:3])] = layer.name
    chosen = set(last_at_size.values())
    return [name for name in names if name in chosen]


def plot_feature_maps(maps: dict, path_or_dir: str, *, max_channels: int = 32,
                      title: str | None = None) -> list[str]:
    """Draws each layer's channels as a grid of small images.

    Each channel is scaled to its own minimum and maximum: channels differ in scale by orders of
    magnitude, and on a common scale only the strongest would show. Where a layer has more
    channels than `max_channels`, the most active ones (highest mean activation) are drawn, in
    channel order, each labelled with its index.

    Args:
        maps: `feature_maps`' dictionary (layer name -> H x W x channels).
        path_or_dir: a ``.png`` path: one figure with a grid per layer, one under another; any
            other path: a folder (created) receiving one ``NN_<layer>.png`` per layer.
        max_channels: the most channels drawn per layer.
        title: a line above the figure (each figure, for a folder).

    Returns:
        The paths written.

    Raises:
        ValueError: for empty `maps`, a map that is not H x W x channels, or `max_channels` < 1.
    """
    max_channels = number(max_channels, "max_channels", integer=True)
    if not maps:
        raise ValueError("maps is empty: pass the dictionary feature_maps() returns.")
    for name, values in maps.items():
        if np.ndim(values) != 3:
            raise ValueError(
                f"Feature map {name!r} must be H x W x channels (one image; feature_maps() returns "
                f"these). Received shape {np.shape(values)}"
            )
    mosaics = {name: _mosaic(np.asarray(values, "float32"), max_channels) for name, values in maps.items()}
    plt = pyplot()
    if str(path_or_dir).lower().endswith(".png"):
        heights = [m[0].shape[0] / m[0].shape[1] for m in mosaics.values()]
        fig, axes = plt.subplots(len(mosaics), 1, figsize=(10, 10 * sum(heights) + 0.5 * len(mosaics)),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False,
                                 layout="constrained")  # room for a title above the layers' titles
        for ax, (name, mosaic) in zip(axes[:, 0], mosaics.items()):
            _draw_mosaic(ax, name, maps[name], *mosaic)
        if title:
            fig.suptitle(title, fontsize=11)
        return [save_figure(fig, path_or_dir)]
    os.makedirs(path_or_dir, exist_ok=True)
    paths = []
    for index, (name, mosaic) in enumerate(mosaics.items()):
        image = mosaic[0]
        fig, ax = plt.subplots(figsize=(10, 10 * image.shape[0] / image.shape[1] + 0.6))
        _draw_mosaic(ax, name, maps[name], *mosaic)
        if title:
            fig.suptitle(title, fontsize=11)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
        paths.append(save_figure(fig, os.path.join(path_or_dir, f"{index:02d}_{safe}.png")))
    return paths


def _mosaic(values: np.ndarray, max_channels: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The chosen channels tiled into one image (NaN between tiles), the channel ids, the grid."""
    channels = values.shape[-1]
    if channels > max_channels:
        chosen = np.sort(np.argsort(-values.mean(axis=(0, 1)), kind="stable")[:max_channels])
    else:
        chosen = np.arange(channels)
    # Rows of 8 (16 beyond 32 channels), as Zeiler and Fergus and keras.io draw them.
    columns = min(len(chosen), 8 if len(chosen) <= 32 else 16)
    rows = -(-len(chosen) // columns)
    height, width = values.shape[:2]
    mosaic = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan, dtype="float32")
    for tile, channel in enumerate(chosen):
        plane = values[..., channel]
        low, high = float(plane.min()), float(plane.max())
        scaled = (plane - low) / (high - low) if high > low else np.zeros_like(plane)
        row, column = divmod(tile, columns)
        mosaic[row * (height + 1):row * (height + 1) + height,
               column * (width + 1):column * (width + 1) + width] = scaled
    return mosaic, chosen, (height, width)


def _draw_mosaic(ax, name, values, mosaic, chosen, tile) -> None:
    import matplotlib

    colormap = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # NaN: between tiles
    ax.imshow(mosaic, cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    height, width = tile
    columns = (mosaic.shape[1] + 1) // (width + 1)
    if len(chosen) <= 64:
        for index, channel in enumerate(chosen):
            row, column = divmod(index, columns)
            ax.text(column * (width + 1), row * (height + 1), str(channel), color="white",
                    fontsize=6, va="top", ha="left")
    shape = "x".join(str(d) for d in np.shape(values))
    shown = "" if len(chosen) == np.shape(values)[-1] else f", the {len(chosen)} most active shown"
    ax.set_title(f"{name}  ({shape}{shown})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
