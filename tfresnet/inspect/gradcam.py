"""Where a network looks: Grad-CAM, vanilla saliency and SmoothGrad for one image and one class.

- `grad_cam`: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization" (ICCV 2017), eq. 1-2: the channels of a late feature map A,
  weighted by the spatial mean of d y_c / d A (y_c the class *logit*), summed, through a ReLU.
- `saliency`: Simonyan, Vedaldi and Zisserman, "Deep Inside Convolutional Networks" (ICLR 2014
  workshop), section 3.1: |d y_c / d x|, the maximum over colour channels.
- `smoothgrad`: Smilkov et al., "SmoothGrad: removing noise by adding noise" (2017): the mean of
  the gradient over copies of the image with Gaussian noise of 10-20% of its range (section 3).

All three differentiate the logit, not the softmax probability: a confidently classified image has
a saturated softmax whose gradient is nearly zero and dominated by the other classes. Unlike
keras.io's "Grad-CAM class activation visualization" and tf-keras-vis, the default layer is found
(the last 4-D feature map), a wrong layer fails naming the valid ones, the map comes back at the
image's own size, and it runs on the JAX backend as well (`tfresnet.inspect.autodiff`).
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from tfresnet.checks import number
from tfresnet.inspect.autodiff import input_gradient, layer_gradient
from tfresnet.inspect.common import (
    graph_model,
    logits_model,
    require_layer_graph,
    resolve_class,
    resolve_layer,
    spatial_layer_names,
)
from tfresnet.inspect.features import one_image_batch
from tfresnet.inspect.plotting import PANEL_INCHES, pyplot, save_figure, show_image

__all__ = ["grad_cam", "saliency", "smoothgrad", "plot_grad_cam"]

_SMOOTHGRAD_BATCH = 16  # noisy copies per gradient call: bounds memory at 224x224 on big models


def grad_cam(model: keras.Model, image, class_id, layer: str | None = None) -> np.ndarray:
    """The Grad-CAM heatmap of one class on one image.

    Args:
        model: a classifier taking raw pixels in [0, 255], ending in a softmax or in logits.
        image: one H x W x C image, raw pixels.
        class_id: the class index (or its digit string).
        layer: the feature map to weight; default: the last layer with a 4-D output larger than
            1 x 1 (the last convolutional feature map, where Selvaraju et al. find the best
            trade-off between spatial detail and class specificity; MobileNet's 1 x 1 pooled
            features and ``conv_preds`` classifier would give one flat tint). On JAX it must be a
            layer every path from input to output passes through (see
            `tfresnet.inspect.autodiff.layer_gradient`).

    Returns:
        An H x W float32 array in [0, 1] (bilinearly upsampled from the layer's resolution,
        divided by its maximum): all zeros when no location speaks for the class.

    Raises:
        ValueError: for an image of the wrong shape, a class the model lacks, a layer it lacks
            or whose output is not a feature map (naming the valid ones), or a subclassed model
            (whose inner layers have no graph to read).
    """
    x = one_image_batch(model, image)
    require_layer_graph(model, "grad_cam")
    net = logits_model(model)
    target = _class_vector(net, class_id)
    name = _feature_layer(graph_model(model), layer)  # named on the model given, not on its logits twin
    _, activations, grads = layer_gradient(net, name, lambda logits: keras.ops.sum(logits * target), x)
    weights = grads[0].mean(axis=(0, 1))  # alpha_k: global-average-pooled gradients (eq. 1)
    cam = np.maximum(np.tensordot(activations[0], weights, axes=([-1], [0])), 0.0)  # eq. 2
    height, width = x.shape[1:3]
    cam = keras.ops.convert_to_numpy(
        keras.ops.image.resize(cam[None, :, :, None].astype("float32"), (height, width),
                               interpolation="bilinear")
    )[0, :, :, 0]
    return _normalise(np.maximum(cam, 0.0))


def saliency(model: keras.Model, image, class_id) -> np.ndarray:
    """The vanilla-gradient saliency map of one class on one image.

    Args:
        model: a classifier taking raw pixels in [0, 255].
        image: one H x W x C image, raw pixels.
        class_id: the class index (or its digit string).

    Returns:
        An H x W float32 array in [0, 1]: the largest |d logit / d pixel| over the channels,
        divided by its 99th percentile over the image and clipped to 1 (the display of Smilkov
        et al.'s code: divided by the maximum, one extreme pixel would leave the rest dark).

    Raises:
        ValueError: for an image of the wrong shape or a class the model lacks.
    """
    x = one_image_batch(model, image)
    net = logits_model(model, x.shape[1:])
    target = _class_vector(net, class_id)
    _, grad = input_gradient(lambda z: keras.ops.sum(net(z, training=False) * target), x)
    return _normalise(np.abs(grad[0]).max(axis=-1), percentile=99)


def smoothgrad(model: keras.Model, image, class_id, *, samples: int = 25, noise: float = 0.15,
               seed: int = 0) -> np.ndarray:
    """The SmoothGrad saliency map of one class on one image.

    Args:
        model: a classifier taking raw pixels in [0, 255].
        image: one H x W x C image, raw pixels.
        class_id: the class index (or its digit string).
        samples: noisy copies averaged (Smilkov et al. see little change beyond 50; 25 already
            removes most of the speckle of `saliency`).
        noise: the noise's standard deviation as a fraction of the image's range (max - min;
            the full 0-255 range for a constant image); the paper recommends 0.10-0.20. The noisy
            copies are not clipped to [0, 255], as in the paper: clipping would bias the noise at
            black and white pixels.
        seed: seed of the noise.

    Returns:
        An H x W float32 array in [0, 1]: the largest |mean gradient| over the channels, scaled
        as `saliency`'s.

    Raises:
        ValueError: for an image of the wrong shape, a class the model lacks, or a bad `samples`
            or `noise`.
    """
    samples = number(samples, "samples", integer=True)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not 0 <= noise < 1:
        raise ValueError(f"noise must be a fraction of the image's range in [0, 1) (0.1-0.2 is usual). "
                         f"Received noise={noise!r}")
    x = one_image_batch(model, image)
    net = logits_model(model, x.shape[1:])
    target = _class_vector(net, class_id)
    spread = float(x.max() - x.min()) or 255.0
    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape[1:], dtype="float64")
    for start in range(0, samples, _SMOOTHGRAD_BATCH):
        count = min(_SMOOTHGRAD_BATCH, samples - start)
        noisy = x + rng.normal(0.0, noise * spread, (count, *x.shape[1:])).astype("float32")
        # Each copy's gradient is its own (inference mode), so one call serves the whole batch.
        _, grad = input_gradient(lambda z: keras.ops.sum(net(z, training=False) * target), noisy)
        total += grad.sum(axis=0)
    return _normalise(np.abs(total / samples).max(axis=-1), percentile=99)


def plot_grad_cam(image, heatmap, path: str, *, saliency=None, smoothgrad=None, title: str | None = None) -> str:
    """Image | Grad-CAM overlay | saliency | SmoothGrad, side by side (the last two when given).

    Args:
        image: the H x W x C image, raw pixels.
        heatmap: `grad_cam`'s H x W map in [0, 1].
        path: the PNG to write (folders are created).
        saliency: `saliency`'s H x W map, drawn when given.
        smoothgrad: `smoothgrad`'s H x W map, drawn when given.
        title: a line above the panels (e.g. the class and its probability).

    Returns:
        `path`.

    Raises:
        ValueError: when a map's height and width differ from the image's.
    """
    image = np.asarray(image, dtype="float32")
    if image.ndim != 3:
        raise ValueError(f"image must be one H x W x C image. Received shape {image.shape}")
    panels = [("Grad-CAM", heatmap), ("saliency", saliency), ("SmoothGrad", smoothgrad)]
    panels = [(label, np.asarray(values, dtype="float32")) for label, values in panels if values is not None]
    for label, values in panels:
        if values.shape != image.shape[:2]:
            raise ValueError(f"The {label} map has shape {values.shape}; the image is "
                             f"{image.shape[0]}x{image.shape[1]}: pass maps computed for this image.")
    plt = pyplot()
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(PANEL_INCHES * (1 + len(panels)), PANEL_INCHES + 0.5),
                             squeeze=False, layout="constrained")  # tight margins: each panel >= 256 px
    show_image(axes[0, 0], image)
    axes[0, 0].set_title("image", fontsize=9)
    for ax, (label, values) in zip(axes[0, 1:], panels):
        if label == "Grad-CAM":
            show_image(ax, image)
            ax.imshow(values, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0, interpolation="bilinear")
            ax.set_title("Grad-CAM overlay", fontsize=9)
        else:
            ax.imshow(values, cmap="inferno", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _class_vector(model: keras.Model, class_id) -> np.ndarray:
    num_classes = int(model.output_shape[-1])
    index = resolve_class(class_id, [str(i) for i in range(num_classes)])
    return np.eye(num_classes, dtype="float32")[index][None]


def _feature_layer(model: keras.Model, layer: str | None) -> str:
    names = spatial_layer_names(model)
    if layer is None:
        if not names:
            raise ValueError(f"Model {model.name!r} has no layer with a 4-D output larger than 1x1: "
                             f"Grad-CAM needs a convolutional feature map.")
        return names[-1]
    resolve_layer(model, layer)  # unknown names: ValueError with the closest ones
    if len(tuple(model.get_layer(layer).output.shape)) != 4:
        shape = tuple(model.get_layer(layer).output.shape)
        raise ValueError(
            f"Layer {layer!r} of model {model.name!r} outputs shape {shape}, not a feature map "
            f"(batch, height, width, channels); Grad-CAM needs one. The last feature-map layers: "
            f"{', '.join(names[-6:])}."
        )
    return layer


def _normalise(values: np.ndarray, percentile: float = 100) -> np.ndarray:
    """`values` divided by their `percentile`-th percentile and clipped to 1 (all zeros if that is 0)."""
    peak = float(np.percentile(values, percentile)) if values.size else 0.0
    return (np.clip(values / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(values)).astype("float32")
