"""Ideal images: the input a network finds most typical of a class, by gradient ascent.

Simonyan, Vedaldi and Zisserman, "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps" (ICLR 2014 workshop), section 2: maximise the class
score S_c(I) - lambda ||I||^2 over the image I, where S_c is the *unnormalised* score (the logit),
not the softmax probability, "because the maximisation of the class posterior can be achieved by
minimising the scores of other classes". Working from logits also keeps the gradient alive: a
saturated softmax passes almost none (on the demo ResNet-20, ascending the probability left an
ideal 8 at p = 0.07; ascending the logit, every digit reached p >= 0.99). The regularisers that
make the images readable are those of Mahendran and Vedaldi, "Understanding Deep Image
Representations by Inverting Them" (CVPR 2015; total variation) and Mordvintsev, Olah and Tyka's
"Inceptionism" (2015; random jitter), as tf-keras-vis' ActivationMaximization applies them.

Compared with tf-keras-vis and keras.io's "Visualizing what convnets learn", every class of a call
is optimised in the same batch (one gradient call per step for all of them, in a compiled
function), the image stays in the raw-pixel range the model takes (its own Preprocess layer does
the scaling, so the L2 penalty pulls towards the model's zero input: black for [0, 1]-scaled
MNIST models, the mean pixel for caffe-style ImageNet models), and the result comes with the
probability the model gives it, so "the ideal 3 is a 3" is checked, not assumed.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from tfresnet.checks import number
from tfresnet.inspect.autodiff import input_gradient_fn
from tfresnet.inspect.common import PIXEL_RANGE, logits_model, resolve_class
from tfresnet.inspect.plotting import PANEL_INCHES, pyplot, save_figure, show_image

__all__ = ["ideal_image", "ideal_images", "plot_ideal_images"]

# The last quarter of the steps runs without jitter: the image is scored where it lies, while the
# jittered steps optimise it for its shifted copies (on the demo ResNet-20, the lowest of the ten
# digits' probabilities: 0.956 with jitter to the end, 0.996 with the last 50 of 200 steps still).
_SETTLE_FRACTION = 0.25
_ADAM_BETAS = (0.9, 0.999)  # Kingma and Ba's defaults
# The start lies this fraction of the way from the model's zero input to mid-grey, so that no pixel
# starts on a clip bound (see `ideal_image`).
_START_TOWARDS_GREY = 0.2


def ideal_image(model: keras.Model, class_id, **options) -> tuple[np.ndarray, float]:
    """The image a model scores highest for one class, and the probability it gives that image.

    Gradient ascent on the class logit minus two penalties, from noise, in raw pixels clipped to
    [0, 255] after each step:

        logit_c(x) - tv_weight * TV(x / 255) - l2_weight * mean(scale(x) ** 2)

    where TV is the mean absolute difference between neighbouring pixels (down plus across) and
    `scale` the model's input scaling (its Preprocess layer; ``x / 127.5 - 1`` without one). Each
    step is an Adam step of about `lr` pixels: Adam scales every pixel's step by its own gradient
    history, so `lr` is in pixel units whatever the size of the logit's gradient, which varies
    by orders of magnitude between networks. The start is uniform noise of +-10% of the range
    around a point a fifth of the way from the model's zero input (where the L2 penalty is least)
    to mid-grey, so that no pixel starts on a clip bound, where one whose gradient points outward
    never moves (an ideal 6 started on black stayed black, p = 0.15).

    Defaults were chosen on the `make demo` ResNet-20 (runs/demo), where every digit's ideal image
    gets p >= 0.99 (lowest: the 1, 0.996) in 8-13 s for all ten together on a 2-core CPU
    (``scripts/measure_ideal.py``). Ascending the softmax probability instead, with the same
    settings, left the 8 at p = 0.07 and the 6 at 0.28. A network ending in global average
    pooling, like the ResNets, scores its class's strokes repeated over the whole image, so its
    ideal images look like textures rather than one centred digit.

    ImageNet (needs network for the weights)::

        model = tfresnet.create_model("resnet50", weights="imagenet", preprocessing="auto")
        images, p = ideal_images(model, [281, 340])   # 281 "tabby cat", 340 "zebra"
        plot_ideal_images(images, p, "imagenet_ideal.png", class_names=["tabby cat", "zebra"])

    At 224x224 the default jitter is 8 pixels and the start is noise around the ImageNet mean
    pixel (ResNet50's caffe scaling). Not measured with the real weights here (no network on the
    development machine); the untrained ResNet50 takes about 2 s a step for two classes on a
    2-core CPU. Raise `tv_weight` for smoother, less textured images, at some cost in probability.

    Args:
        model: a classifier taking raw pixels in [0, 255], ending in a softmax or in logits.
        class_id: the class index (or its digit string).
        **options: ``steps``, ``lr``, ``tv_weight``, ``l2_weight``, ``jitter``, ``seed``,
            ``input_shape``, as for
            `ideal_images` (which this calls with the one class).

    Returns:
        ``(image, probability)``: an H x W x C float32 array of raw pixels and the model's softmax
        probability of `class_id` for it.

    Raises:
        ValueError: for a class the model does not have or a bad setting (naming it).
    """
    images, probabilities = ideal_images(model, [class_id], **options)
    return images[0], float(probabilities[0])


def ideal_images(
    model: keras.Model,
    class_ids,
    *,
    steps: int = 200,
    lr: float = 4.0,
    tv_weight: float = 10.0,
    l2_weight: float = 10.0,
    jitter: int | None = None,
    seed: int = 0,
    input_shape=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ideal images of several classes, optimised together (see `ideal_image` for the method).

    The images share each gradient call (the model runs in inference mode, so each image's
    gradient is its own); memory grows with the number of classes, so for hundreds of ImageNet
    classes call it on slices.

    Args:
        model: a classifier taking raw pixels in [0, 255].
        class_ids: class indices (repeats allowed: the same class from different noise).
        steps: gradient steps.
        lr: the Adam step size, in pixels of the 0-255 range.
        tv_weight: weight of the total-variation penalty (smoothness).
        l2_weight: weight of the L2 penalty on the scaled image (no pixel larger than it needs).
        jitter: each step is taken on the image rolled by up to this many pixels each way (None:
            one pixel per 28 of image height: 1 for MNIST, 8 at 224x224; 0: no jitter), which
            favours features that do not rely on exact pixel positions.
        seed: seed of the starting noise and the jitter.
        input_shape: H x W x C, for a model that does not fix its own (a subclassed model, or
            one built with ``input_shape=(None, None, C)``).

    Returns:
        ``(images, probabilities)``: N x H x W x C float32 raw pixels and N probabilities, in the
        order of `class_ids`.

    Raises:
        ValueError: for an empty list, a class the model does not have, a model of unknown input
            size or a bad setting (naming it).
    """
    net = logits_model(model, input_shape)
    num_classes = int(net.output_shape[-1])
    if isinstance(class_ids, (str, numbers.Integral)):
        class_ids = [class_ids]
    classes = [resolve_class(c, [str(i) for i in range(num_classes)]) for c in class_ids]
    if not classes:
        raise ValueError("class_ids is empty: pass one or more class indices.")
    shape = tuple(net.input_shape[1:]) if input_shape is None else tuple(input_shape)
    if any(dim is None for dim in shape):
        raise ValueError(
            f"Model {model.name!r} takes images of any size (input shape {shape}); ideal images need "
            f"a fixed one: pass input_shape=(H, W, C)."
        )
    steps = number(steps, "steps", integer=True)
    lr = number(lr, "lr")
    tv_weight = number(tv_weight, "tv_weight", allow_zero=True)
    l2_weight = number(l2_weight, "l2_weight", allow_zero=True)
    jitter = max(1, round(shape[0] / 28)) if jitter is None else number(
        jitter, "jitter", integer=True, allow_zero=True)

    scale = _input_scaling(net)
    targets = np.eye(num_classes, dtype="float32")[classes]
    low, high = PIXEL_RANGE

    def objective(x):
        score = keras.ops.sum(net(x, training=False) * targets)
        unit = x / (high - low)
        tv = (keras.ops.mean(keras.ops.abs(unit[:, 1:] - unit[:, :-1]), axis=(1, 2, 3))
              + keras.ops.mean(keras.ops.abs(unit[:, :, 1:] - unit[:, :, :-1]), axis=(1, 2, 3)))
        l2 = keras.ops.mean(keras.ops.square(scale(x)), axis=(1, 2, 3))
        return score - tv_weight * keras.ops.sum(tv) - l2_weight * keras.ops.sum(l2)

    gradient = input_gradient_fn(objective)
    rng = np.random.default_rng(seed)
    zero = _zero_input(scale, shape[-1])
    centre = zero + _START_TOWARDS_GREY * ((low + high) / 2 - zero)
    x = np.clip(centre + rng.uniform(-0.1, 0.1, (len(classes), *shape)) * (high - low), low, high)
    x = _adam_ascent(gradient, x.astype("float32"), steps=steps, lr=lr, jitter=jitter, rng=rng)
    logits = keras.ops.convert_to_numpy(net(x, training=False)).astype("float64")
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return x, probabilities[np.arange(len(classes)), classes].astype("float32")


def _adam_ascent(gradient, x: np.ndarray, *, steps: int, lr: float, jitter: int, rng) -> np.ndarray:
    """`steps` Adam steps up `gradient` from `x`, each on the image rolled by up to `jitter`
    pixels (none in the last `_SETTLE_FRACTION` of the steps), clipped to the pixel range."""
    low, high = PIXEL_RANGE
    first, second = np.zeros_like(x), np.zeros_like(x)
    (beta1, beta2), settle = _ADAM_BETAS, round(steps * (1 - _SETTLE_FRACTION))
    for step in range(1, steps + 1):
        shift = tuple(rng.integers(-jitter, jitter + 1, 2)) if jitter and step <= settle else (0, 0)
        _, grad = gradient(np.roll(x, shift, axis=(1, 2)))
        grad = np.roll(grad, (-shift[0], -shift[1]), axis=(1, 2))
        first = beta1 * first + (1 - beta1) * grad
        second = beta2 * second + (1 - beta2) * grad * grad
        ascent = (first / (1 - beta1**step)) / (np.sqrt(second / (1 - beta2**step)) + 1e-8)
        x = np.clip(x + lr * ascent, low, high).astype("float32")
    return x


def _input_scaling(model: keras.Model):
    """The model's own input scaling (its first Preprocess layer), or ``x / 127.5 - 1``."""
    from tfresnet.models.layers import Preprocess

    for layer in model.layers:
        if isinstance(layer, Preprocess):
            return layer
    return lambda x: x / 127.5 - 1.0


def _zero_input(scale, channels: int) -> np.ndarray:
    """The raw pixel value, per channel, that `scale` maps to zero (clipped to the pixel range).

    The scalings are affine per channel, possibly reordering channels (caffe's RGB -> BGR), so two
    probes per channel find each one's offset and slope.
    """
    low, high = PIXEL_RANGE
    base = keras.ops.convert_to_numpy(scale(np.zeros((1, 1, 1, channels), "float32")))[0, 0, 0]
    zero = np.full(channels, (low + high) / 2, dtype="float32")
    for channel in range(channels):
        probe = np.zeros((1, 1, 1, channels), "float32")
        probe[..., channel] = high
        moved = keras.ops.convert_to_numpy(scale(probe))[0, 0, 0] - base
        out = int(np.argmax(np.abs(moved)))
        if moved[out] != 0:
            zero[channel] = np.clip(-base[out] * high / moved[out], low, high)
    return zero


def plot_ideal_images(images, probabilities, path: str, class_names=None) -> str:
    """The ideal images in a grid, each titled with its class and the model's probability.

    Args:
        images: N x H x W x C raw pixels (`ideal_images`' first result).
        probabilities: N probabilities (its second).
        path: the PNG to write (folders are created).
        class_names: one name per image (default: "class 0", "class 1", ... by position).

    Returns:
        `path`.

    Raises:
        ValueError: for images that are not N x H x W x C, or counts that differ.
    """
    images = np.asarray(images, dtype="float32")
    probabilities = np.asarray(probabilities, dtype="float32").reshape(-1)
    if images.ndim != 4:
        raise ValueError(f"images must be N x H x W x C raw pixels. Received shape {images.shape}")
    if len(probabilities) != len(images):
        raise ValueError(f"Received {len(images)} images and {len(probabilities)} probabilities; "
                         f"pass one probability per image.")
    if class_names is None:
        class_names = [f"class {i}" for i in range(len(images))]
    elif len(class_names) != len(images):
        raise ValueError(f"class_names has {len(class_names)} names for {len(images)} images; pass "
                         f"one per image (in the order of the class ids).")
    columns = min(len(images), 5)  # ten MNIST digits in two rows, each large enough to see
    rows = -(-len(images) // columns)
    plt = pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES * columns, (PANEL_INCHES + 0.5) * rows + 0.4),
                             squeeze=False, layout="constrained")  # room for the suptitle above the titles
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, probability, name in zip(axes.ravel(), images, probabilities, class_names):
        show_image(ax, image)
        ax.axis("on")
        ax.set_title(f"{name}\np={probability:.3f}", fontsize=10)
    fig.suptitle("Ideal images (gradient ascent on each class logit)", fontsize=10)
    return save_figure(fig, path)
