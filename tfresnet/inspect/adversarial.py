"""Adversarial examples: small pixel changes that flip a network's answer, and accuracy under them.

- `fgsm`: the fast gradient sign method of Goodfellow, Shlens and Szegedy, "Explaining and
  Harnessing Adversarial Examples" (ICLR 2015), eq. 3: one step of size eps along the sign of
  the loss gradient.
- `pgd`: projected gradient descent on the L-infinity ball of Madry et al., "Towards Deep Learning
  Models Resistant to Adversarial Attacks" (ICLR 2018), section 2.1: FGSM steps of a smaller
  size from a random start in the ball, each followed by projection back onto the ball.
- `robustness`: accuracy per epsilon for each attack (the curves of Madry et al., figure 4).

Every attack works on raw pixels in [0, 255] with eps in pixel units (MNIST's customary
eps = 0.3 is ``0.3 * 255`` here), and on the model's logits (`logits_model`): through a saturated
softmax the cross-entropy gradient underflows, so a confidently classified image would yield a
zero step and look robust when it is not.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from tfresnet.checks import number
from tfresnet.inspect.autodiff import input_gradient_fn
from tfresnet.inspect.common import PIXEL_RANGE, check_images, logits_model
from tfresnet.inspect.labels import integer_labels
from tfresnet.inspect.plotting import PANEL_INCHES, pyplot, save_figure

__all__ = ["ATTACKS", "fgsm", "pgd", "robustness", "plot_robustness", "plot_adversarial"]

DEFAULT_EPS = tuple(round(f * 255, 2) for f in (0.0, 0.05, 0.1, 0.2, 0.3))  # 0-30% of the range
_BATCH_SIZE = 256


# ----------------------------------------------------------------------------------- validation


def _check_eps(eps, what: str = "eps") -> float:
    return number(eps, what, allow_zero=True, unit=" in pixel units (the images span 0-255, so "
                  "eps=0.1*255=25.5 allows a change of 10% of the range)")


def _class_ids(values, n: int, num_classes: int, what: str) -> np.ndarray:
    """`values` (one int, N ints, or N one-hot rows) as N class ids, or raises naming the bad one."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape == (n, num_classes):
        array = array.argmax(axis=1)  # one-hot (or soft) labels
    elif array.ndim == 0:
        array = np.full(n, array.item())
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(
            f"{what} must be one class id, {n} class ids or {n} one-hot rows of {num_classes} "
            f"(one per image). Received {what} with shape {np.shape(values)}"
        )
    array = integer_labels(array, what, "ids", num_classes - 1, (
        f"{what} holds class {{value}} (at position {{position}}), out of range: the model has "
        f"{num_classes} classes, ids 0-{num_classes - 1}."))
    return array.astype(np.int64)


def _num_classes(model: keras.Model) -> int:
    return int(model.output_shape[-1])


# ----------------------------------------------------------------------------------- attacks


def _signed_gradient_fn(logits: keras.Model):
    """``signed(x, labels)``: sign(d/dx sum_i CE(labels_i, logits(x_i))), the per-example ascent direction.

    Compiled once per attack call: PGD asks for it every step (eager, 40 steps of ResNet-20 over
    1,000 digits took 320 s on 2 CPU cores).
    """

    def loss(batch, labels):
        # A sum, not a mean: each example's gradient is its own, whatever the batch size.
        return keras.ops.sum(keras.ops.sparse_categorical_crossentropy(
            labels, logits(batch, training=False), from_logits=True))

    gradient = input_gradient_fn(loss)

    def signed(x, labels):
        return np.sign(gradient(x, np.asarray(labels, dtype="int32"))[1])

    return signed


def _prepare(model, x, y, target):
    """Checked images, and the labels the loss uses with the direction of the step (+1 up, -1 down)."""
    x = check_images(model, x)
    num_classes = _num_classes(model)
    if target is not None:
        # Targeted: step down the target's loss. `y` is only checked, for a clear error if given.
        if y is not None:
            _class_ids(y, len(x), num_classes, "y")
        return x, _class_ids(target, len(x), num_classes, "target"), -1.0
    if y is None:
        raise ValueError("An untargeted attack needs the true labels: pass y (or a target). Received y=None")
    return x, _class_ids(y, len(x), num_classes, "y"), 1.0


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _fgsm_batch(signed, x, labels, direction, eps):
    low, high = PIXEL_RANGE
    return np.clip(x + direction * eps * signed(x, labels), low, high)


def fgsm(model: keras.Model, x, y, eps: float, *, target=None, batch_size: int = _BATCH_SIZE) -> np.ndarray:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size `eps` per pixel.

    ``x_adv = clip(x + eps * sign(grad_x CE(y, logits(x))), 0, 255)``; targeted, the step goes
    down the target's cross-entropy instead: ``clip(x - eps * sign(grad_x CE(target, ...)))``.

    Args:
        model: a classifier taking raw pixels (its final softmax is left off for the gradient).
        x: a batch of images, shape (N, H, W, C), pixels in [0, 255].
        y: the true labels: N class ids or N one-hot rows. May be None when `target` is given.
        eps: the L-infinity size of the change, in pixel units (e.g. ``0.1 * 255``).
        target: for a targeted attack, the class to move each image towards: one class id for
            all, or one per image.
        batch_size: images per gradient computation (bounds memory, not the result).

    Returns:
        The adversarial images, float32, shaped like `x`, within `eps` of `x` and in [0, 255].

    Raises:
        ValueError: for images of the wrong shape, labels or target out of the model's classes,
            or an eps that is negative or not a number.
    """
    return _run(_fgsm_batch, model, x, y, target, batch_size, eps=_check_eps(eps))


def _pgd_batch(signed, x, labels, direction, eps, *, steps, step_size, start):
    low, high = PIXEL_RANGE
    # The feasible set is the eps-ball around x intersected with the pixel range.
    lower, upper = np.maximum(x - eps, low), np.minimum(x + eps, high)
    x_adv = np.clip(x + start, lower, upper)
    for _ in range(steps):
        x_adv = x_adv + direction * step_size * signed(x_adv, labels)
        x_adv = np.clip(x_adv, lower, upper)
    return x_adv


def pgd(
    model: keras.Model,
    x,
    y,
    eps: float,
    *,
    steps: int = 40,
    step_size: float | None = None,
    random_start: bool = True,
    target=None,
    seed: int = 0,
    batch_size: int = _BATCH_SIZE,
) -> np.ndarray:
    """L-infinity projected gradient descent (Madry et al. 2018).

    From a uniform random point of the eps-ball around `x` (or from `x`), `steps` signed-gradient
    steps of `step_size`, each followed by projection onto the eps-ball around `x` intersected
    with [0, 255]. The last iterate is returned, as in the paper.

    Args:
        model: a classifier taking raw pixels (its final softmax is left off for the gradient).
        x: a batch of images, shape (N, H, W, C), pixels in [0, 255].
        y: the true labels: N class ids or N one-hot rows. May be None when `target` is given.
        eps: the radius of the L-infinity ball, in pixel units (e.g. ``0.3 * 255``).
        steps: gradient steps.
        step_size: pixels per step; default ``2.5 * eps / steps``, the rule of thumb of the
            MadryLab `robustness` library: the steps can cross the ball with room to spare.
        random_start: start from a uniform random point of the ball, as Madry et al. do, rather
            than from `x` (FGSM's starting point, where the gradient can be deceptive).
        target: for a targeted attack ("make this 3 an 8"), the class to move each image
            towards: one class id for all, or one per image. The step then goes down the target's
            cross-entropy.
        seed: seed of the random start.
        batch_size: images attacked together (bounds memory, not the result).

    Returns:
        The adversarial images, float32, shaped like `x`, within `eps` of `x` and in [0, 255].

    Raises:
        ValueError: for images of the wrong shape, labels or target out of the model's classes,
            an eps that is negative or not a number, or steps, step_size or batch_size <= 0.
    """
    eps = _check_eps(eps)
    x = check_images(model, x)
    options = _pgd_options(eps, x.shape, steps=steps, step_size=step_size,
                           random_start=random_start, seed=seed)
    return _run(_pgd_batch, model, x, y, target, batch_size, **options)


def _pgd_options(eps, shape, *, steps, seed, step_size=None, random_start=True) -> dict:
    steps = number(steps, "steps", integer=True)
    step_size = 2.5 * eps / steps if step_size is None else number(step_size, "step_size")
    # Drawn for the whole input at once, so the result does not depend on batch_size.
    start = (np.random.default_rng(seed).uniform(-eps, eps, size=shape).astype("float32")
             if random_start else np.zeros(shape, "float32"))
    return {"eps": eps, "steps": steps, "step_size": step_size, "start": start}


def _run(attack, model, x, y, target, batch_size, *, signed=None, **options):
    """Applies `attack` batch by batch; array-valued options (the random start) are sliced too."""
    batch_size = number(batch_size, "batch_size", integer=True)
    net = logits_model(model, check_images(model, x).shape[1:])
    x, labels, direction = _prepare(net, x, y, target)
    signed = _signed_gradient_fn(net) if signed is None else signed
    out = np.empty_like(x)
    for part in _batches(len(x), batch_size):
        sliced = {k: v[part] if isinstance(v, np.ndarray) else v for k, v in options.items()}
        out[part] = attack(signed, x[part], labels[part], direction, **sliced)
    return out


# What `robustness` runs for each attack name: the batch step and its options at one epsilon.
_PLANS = {
    "fgsm": lambda eps, shape, *, steps, seed: (_fgsm_batch, {"eps": eps}),
    "pgd": lambda eps, shape, *, steps, seed: (
        _pgd_batch, _pgd_options(eps, shape, steps=steps, seed=seed)),
}
ATTACKS = tuple(_PLANS)  # the attack names `robustness` takes


# ----------------------------------------------------------------------------------- robustness


def _predict(model: keras.Model, x: np.ndarray, batch_size: int = _BATCH_SIZE) -> np.ndarray:
    """Model outputs for `x`, computed in batches (logits or probabilities: argmax agrees)."""
    outputs = [keras.ops.convert_to_numpy(model(x[part], training=False))
               for part in _batches(len(x), batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, _num_classes(model)), "float32")


def _collect(dataset, max_examples: int | None):
    """Up to `max_examples` images and labels from a tf.data dataset of batches or an (x, y) pair."""
    if isinstance(dataset, (tuple, list)):
        if len(dataset) != 2:
            raise ValueError(
                f"dataset must be a tf.data dataset of (images, labels) batches or an (x, y) pair "
                f"of arrays. Received a {type(dataset).__name__} of {len(dataset)} items"
            )
        x, y = np.asarray(dataset[0]), np.asarray(dataset[1])
        return (x, y) if max_examples is None else (x[:max_examples], y[:max_examples])
    xs, ys, count = [], [], 0
    for element in dataset:
        if not isinstance(element, (tuple, list)) or len(element) < 2:
            raise ValueError(
                f"dataset must yield (images, labels) batches. Received an element of type "
                f"{type(element).__name__}"
            )
        xs.append(np.asarray(element[0]))
        ys.append(np.asarray(element[1]))
        count += len(xs[-1])
        if max_examples is not None and count >= max_examples:
            break
    if not xs:
        raise ValueError("dataset is empty: robustness needs at least one labelled image.")
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x, y) if max_examples is None else (x[:max_examples], y[:max_examples])


def robustness(
    model: keras.Model,
    dataset,
    eps=DEFAULT_EPS,
    *,
    attacks=("fgsm", "pgd"),
    max_examples: int | None = 1000,
    pgd_steps: int = 20,
    batch_size: int = _BATCH_SIZE,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy on adversarial examples, per attack and epsilon.

    Args:
        model: a classifier taking raw pixels.
        dataset: a tf.data dataset of ``(images, labels)`` batches (labels as ids or one-hot),
            or an ``(x, y)`` pair of arrays.
        eps: the epsilons, in pixel units; 0 gives the clean accuracy.
        attacks: names from `ATTACKS` ("fgsm", "pgd").
        max_examples: attack at most this many examples (the first ones); None for all.
        pgd_steps: PGD steps (step size ``2.5 * eps / pgd_steps``, random start).
        batch_size: images attacked together.
        seed: seed of PGD's random start.

    Returns:
        A DataFrame with one row per (attack, eps): ``attack``, ``eps`` (pixels),
        ``eps_fraction`` (eps / 255), ``accuracy`` and ``examples``.

    Raises:
        ValueError: for an unknown attack, a bad eps, or a dataset of the wrong shape or labels.
    """
    attacks = [attacks] if isinstance(attacks, str) else list(attacks)
    unknown = [a for a in attacks if a not in _PLANS]
    if unknown or not attacks:
        raise ValueError(f"Unknown attack {unknown[0] if unknown else attacks!r}. Valid attacks: "
                         f"{', '.join(ATTACKS)}.")
    eps_values = [_check_eps(e) for e in ([eps] if np.ndim(eps) == 0 else list(eps))]
    if not eps_values:
        raise ValueError("eps must list at least one epsilon (0 gives the clean accuracy). Received eps=[]")
    pgd_steps = number(pgd_steps, "pgd_steps", integer=True)
    if max_examples is not None:
        max_examples = number(max_examples, "max_examples", integer=True)
    x, y = _collect(dataset, max_examples)
    x = check_images(model, x)
    logits = logits_model(model, x.shape[1:])
    labels = _class_ids(y, len(x), _num_classes(logits), "labels")
    signed = _signed_gradient_fn(logits)
    clean = float(np.mean(_predict(logits, x, batch_size).argmax(axis=1) == labels))
    rows = []
    for name in attacks:
        for e in eps_values:
            if e == 0:
                accuracy = clean  # every attack is the identity at eps = 0
            else:
                step, options = _PLANS[name](e, x.shape, steps=pgd_steps, seed=seed)
                # One compiled gradient for every epsilon, rather than one traced per attack call.
                x_adv = _run(step, logits, x, labels, None, batch_size, signed=signed, **options)
                accuracy = float(np.mean(_predict(logits, x_adv, batch_size).argmax(axis=1) == labels))
            rows.append({"attack": name, "eps": e, "eps_fraction": e / PIXEL_RANGE[1],
                         "accuracy": accuracy, "examples": len(x)})
    return pd.DataFrame(rows, columns=["attack", "eps", "eps_fraction", "accuracy", "examples"])


# ----------------------------------------------------------------------------------- plots


def plot_robustness(frame: pd.DataFrame, path: str, *, split: str | None = None,
                    classes: int | None = None) -> str:
    """Accuracy against epsilon, one line per attack, written as a PNG.

    Args:
        frame: `robustness`'s DataFrame (columns ``attack``, ``eps``, ``accuracy``).
        path: the PNG to write (folders are created).
        split: the split the examples came from (``"test"``), named in the title; None for
            examples of no named split ("the examples given").
        classes: the model's number of classes; draws chance, 1/classes, as a dashed line, so a
            reader sees where an attack leaves the model no better than a guess.

    Returns:
        `path`.

    Raises:
        ValueError: if `frame` lacks a needed column.
    """
    missing = [c for c in ("attack", "eps", "accuracy") if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {', '.join(missing)}: pass the DataFrame robustness() "
                         f"returns. Received columns {list(frame.columns)}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, group in frame.groupby("attack", sort=False):
        ordered = group.sort_values("eps")
        ax.plot(ordered["eps"], ordered["accuracy"], marker="o", label=str(name).upper())
    if classes:
        ax.axhline(1 / classes, color="gray", linestyle="--", linewidth=1, label=f"chance (1/{classes})")
    ax.set_xlabel("epsilon (L-inf, pixels of 0-255)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    top = ax.secondary_xaxis("top", functions=(lambda e: e / 255, lambda f: f * 255))
    top.set_xlabel("epsilon / 255")
    examples = frame["examples"].max() if "examples" in frame.columns else None
    counted = f"{examples} " if examples else ""
    ax.set_title(f"{split.capitalize()} accuracy under attack ({counted}{split} examples)" if split
                 else f"Accuracy under attack ({counted}examples given)")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def _describe(probs: np.ndarray, class_names, top: int) -> str:
    order = np.argsort(probs)[::-1][:top]
    return "\n".join(f"{class_names[i]}: {probs[i]:.2f}" for i in order)


def _show(ax, image: np.ndarray, title: str) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def plot_adversarial(
    model: keras.Model,
    x,
    x_adv,
    path: str,
    *,
    y=None,
    class_names=None,
    top: int = 3,
    amplify: float | None = None,
    max_rows: int = 16,
) -> str:
    """Original | perturbation | adversarial, one row per image, titled with the top classes.

    Args:
        model: the classifier the examples were made for.
        x: the original images, (N, H, W, C) raw pixels.
        x_adv: their adversarial versions, the same shape.
        path: the PNG to write (folders are created).
        y: the true labels, shown above the originals when given.
        class_names: one name per class (default: the class ids).
        top: classes listed, with their probabilities, above each image.
        amplify: the perturbation is shown as ``0.5 + amplify * (x_adv - x) / 255`` on a grey
            background; default: the factor that brings the largest change to the edge of the
            range (stated in the column's title).
        max_rows: plot only the first this many images.

    Returns:
        `path`.

    Raises:
        ValueError: for images of the wrong shape, `x` and `x_adv` of different shapes, or
            `class_names` of the wrong length.
    """
    x = check_images(model, x)
    x_adv = check_images(model, x_adv, what="x_adv")
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have the same shape. Received x {x.shape} and "
                         f"x_adv {x_adv.shape}")
    logits = logits_model(model, x.shape[1:])
    num_classes = _num_classes(logits)
    class_names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
    if len(class_names) != num_classes:
        raise ValueError(f"class_names must have one name per class ({num_classes}). Received "
                         f"{len(class_names)} names")
    top = number(top, "top", integer=True)
    max_rows = number(max_rows, "max_rows", integer=True)
    x, x_adv = x[:max_rows], x_adv[:max_rows]
    if y is not None:
        y = _class_ids(np.asarray(y)[:max_rows] if np.ndim(y) else y, len(x), num_classes, "y")
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(_predict(logits, np.concatenate([x, x_adv]))))
    delta = x_adv - x
    largest = float(np.abs(delta).max())
    if amplify is None:
        amplify = PIXEL_RANGE[1] / (2 * largest) if largest > 0 else 1.0
    else:
        amplify = number(amplify, "amplify")

    plt = pyplot()
    fig, axes = plt.subplots(len(x), 3, figsize=(3 * PANEL_INCHES, (PANEL_INCHES + 1.0) * len(x)), squeeze=False)
    scale = PIXEL_RANGE[1]
    for row in range(len(x)):
        truth = f"true {class_names[y[row]]}\n" if y is not None else ""
        _show(axes[row, 0], x[row] / scale, truth + _describe(probs[row], class_names, top))
        _show(axes[row, 1], 0.5 + amplify * delta[row] / scale,
              f"perturbation x{amplify:.1f}\nmax |d| = {np.abs(delta[row]).max():.1f} px")
        _show(axes[row, 2], x_adv[row] / scale, _describe(probs[len(x) + row], class_names, top))
    axes[0, 0].set_title("original\n" + axes[0, 0].get_title(), fontsize=9)
    axes[0, 2].set_title("adversarial\n" + axes[0, 2].get_title(), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
