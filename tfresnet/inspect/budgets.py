"""Attack budgets: the default eps for an input, and the smallest eps at which an attack succeeds.

The customary budgets are those of the papers the attacks come from, in pixels of 0-255:

- MNIST-like inputs (one channel, at most 32 x 32): Madry et al. (ICLR 2018) use eps = 0.3 for
  their MNIST challenge, i.e. 76.5 pixels; untargeted attacks here default to 0.1 (25.5), where
  FGSM already takes a plain convnet below chance.
- Photos (colour, or larger): 0.3 of the range is visible colour noise, no longer a "small"
  change. Madry et al.'s CIFAR-10 budget is 8/255 (8 pixels), the common ImageNet budgets are
  4-16/255 (Kurakin et al. 2017, "Adversarial Machine Learning at Scale"; 16 for their targeted
  ImageNet attacks): 8 pixels untargeted, 16 targeted.

`smallest_eps` answers "how small a change is enough?": a geometric ladder of eps (doubling)
until the attack succeeds, then bisection between the last failure and the first success, each
a PGD (or FGSM) attack of its own, all images of a batch searched together.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfresnet.inspect.adversarial import _class_ids, _fgsm_batch, _pgd_batch, _signed_gradient_fn
from tfresnet.inspect.common import PIXEL_RANGE, check_images, logits_model

__all__ = ["default_eps", "smallest_eps", "SmallestEps"]

_MNIST_LIKE = {"targeted": 0.3 * 255, "untargeted": 0.1 * 255}  # Madry et al.'s MNIST budgets
_PHOTO = {"targeted": 16.0, "untargeted": 8.0}  # 16/255 and 8/255 (Kurakin et al.; Madry's CIFAR-10)


def default_eps(image_shape, *, targeted: bool) -> float:
    """The default L-infinity budget, in pixels of 0-255, for images of `image_shape` (H, W, C).

    One-channel images of at most 32 x 32 (MNIST-like) get Madry et al.'s MNIST budgets, 0.3 x 255
    targeted and 0.1 x 255 untargeted; anything else (colour photos, larger images) the few pixels
    of the CIFAR-10 and ImageNet literature, 16 targeted and 8 untargeted (see the module
    docstring for the sources).
    """
    height, width, channels = tuple(image_shape)[-3:]
    small = height is not None and width is not None and height * width <= 32 * 32
    table = _MNIST_LIKE if channels == 1 and small else _PHOTO
    return float(table["targeted" if targeted else "untargeted"])


@dataclasses.dataclass
class SmallestEps:
    """What `smallest_eps` found, per image.

    Attributes:
        eps: the smallest eps (pixels of 0-255) found to succeed; NaN where none up to `eps_max` did.
        reached: whether the attack succeeded at some eps.
        x_adv: the adversarial image at `eps` (the clean image where none succeeded).
        trials: attacks run (each one PGD or FGSM run on the images still searched).
    """

    eps: np.ndarray
    reached: np.ndarray
    x_adv: np.ndarray
    trials: int


def smallest_eps(
    model: keras.Model,
    x,
    *,
    target=None,
    y=None,
    method: str = "pgd",
    steps: int = 20,
    eps_start: float = 0.5,
    eps_max: float = 64.0,
    tolerance: float = 0.25,
) -> SmallestEps:
    """The smallest L-infinity eps at which an attack succeeds on each image, by ladder and bisection.

    Targeted (`target` given), success is the model answering the target; untargeted, it is the
    model's answer leaving `y`. Each trial is an attack of its own at that eps (PGD from the image
    itself, without random start, so a trial is deterministic; step ``2.5 * eps / steps``).

    Args:
        model: a classifier taking raw pixels.
        x: images (N, H, W, C), raw pixels in [0, 255].
        target: the class to reach (one id, or one per image); or None for untargeted.
        y: the true labels, for an untargeted search.
        method: ``"pgd"`` or ``"fgsm"``.
        steps: PGD steps per trial.
        eps_start: the first eps of the ladder, in pixels (it doubles up to `eps_max`).
        eps_max: the largest eps tried.
        tolerance: bisection stops when the bracket is narrower than this many pixels.

    Returns:
        A `SmallestEps`.

    Raises:
        ValueError: for a bad method, bounds, images or labels.
    """
    if method not in ("pgd", "fgsm"):
        raise ValueError(f"method must be 'pgd' or 'fgsm'. Received method={method!r}")
    if not 0 < eps_start <= eps_max <= PIXEL_RANGE[1] or tolerance <= 0:
        raise ValueError(f"Need 0 < eps_start <= eps_max <= 255 and tolerance > 0. Received "
                         f"eps_start={eps_start}, eps_max={eps_max}, tolerance={tolerance}")
    if (target is None) == (y is None):
        raise ValueError("Pass target= (targeted search) or y= (untargeted), exactly one of them.")
    x = check_images(model, x)
    net = logits_model(model, x.shape[1:])
    classes = int(net.output_shape[-1])
    goal = _class_ids(target if target is not None else y, len(x), classes, "target" if target is not None else "y")
    trial = _Trial(net, x, goal, targeted=target is not None, method=method, steps=steps)
    ladder = [eps_start * 2.0**k for k in range(64) if eps_start * 2.0**k < eps_max] + [eps_max]
    low = np.zeros(len(x))
    high = np.full(len(x), np.nan)
    best = x.copy()
    for eps in ladder:  # the first rung that succeeds brackets each image's eps
        todo = np.flatnonzero(np.isnan(high))
        if not len(todo):
            break
        ok, x_adv = trial(todo, np.full(len(todo), eps))
        high[todo[ok]], best[todo[ok]] = eps, x_adv[ok]
        low[todo[~ok]] = eps
    while True:
        todo = np.flatnonzero(~np.isnan(high) & (high - low > tolerance))
        if not len(todo):
            break
        middle = (low[todo] + high[todo]) / 2
        ok, x_adv = trial(todo, middle)
        high[todo[ok]], best[todo[ok]] = middle[ok], x_adv[ok]
        low[todo[~ok]] = middle[~ok]
    return SmallestEps(high, ~np.isnan(high), best, trial.count)


class _Trial:
    """One attack on a subset of the images, each at its own eps: (succeeded, adversarial images)."""

    def __init__(self, net, x, goal, *, targeted: bool, method: str, steps: int):
        self.net, self.x, self.goal, self.targeted = net, x, goal, targeted
        self.method, self.steps, self.count = method, steps, 0
        self.signed = _signed_gradient_fn(net)  # compiled once for every trial

    def __call__(self, index: np.ndarray, eps: np.ndarray):
        self.count += 1
        x, goal = self.x[index], self.goal[index]
        eps = eps.astype("float32").reshape(-1, 1, 1, 1)  # per image, broadcast over its pixels
        direction = -1.0 if self.targeted else 1.0
        if self.method == "fgsm":
            x_adv = _fgsm_batch(self.signed, x, goal, direction, eps)
        else:
            x_adv = _pgd_batch(self.signed, x, goal, direction, eps, steps=self.steps,
                               step_size=2.5 * eps / self.steps, start=np.zeros_like(x))
        answer = keras.ops.convert_to_numpy(self.net(x_adv, training=False)).argmax(axis=1)
        return (answer == goal) if self.targeted else (answer != goal), x_adv.astype("float32")
