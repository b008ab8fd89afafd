"""`tfresnet inspect`: each diagnostic of `tfresnet.inspect` as one command that writes PNGs and data.

    tfresnet inspect gradients  SOURCE [--data NAME] [--examples N]
    tfresnet inspect features   SOURCE IMAGE [--layers L1,L2]
    tfresnet inspect ideal      SOURCE [--class NAME|ID ...]
    tfresnet inspect attack     SOURCE IMAGE... [--eps PIXELS] [--method pgd|fgsm] [--target NAME|ID]
    tfresnet inspect robustness SOURCE [--eps 0,8,16,...] [--examples N]
    tfresnet inspect gradcam    SOURCE IMAGE... [--class NAME|ID] [--layer NAME]

SOURCE is a finished run directory (its `model.keras` and `class_names.json`), a `.keras` file or
a registry model name (untrained: gradient flow at initialisation). Every command writes into
`--out` (default `SOURCE/inspect` for a run, `inspect-SOURCE` otherwise) and prints what it wrote.
"""

from __future__ import annotations

import argparse
import json
import os

__all__ = ["add_arguments", "run"]


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run directory, .keras file, or registry model name")
    parser.add_argument("--out", default=None, help="output folder (default SOURCE/inspect)")
    parser.add_argument("--input-shape", default=None, metavar="H,W,C",
                        help="for a registry name: the input shape (default: the model's own)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="for a registry name: number of classes (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise, jitter and initial weights")


def _add_images(parser: argparse.ArgumentParser, *, many: bool) -> None:
    parser.add_argument("images", nargs="+" if many else 1, metavar="IMAGE",
                        help="image files (resized to the model's input size)")
    parser.add_argument("--convert", action="store_true",
                        help="convert RGB images for a grayscale model, or grayscale for an RGB one")


def _add_data(parser: argparse.ArgumentParser, examples: int) -> None:
    parser.add_argument("--data", default=None,
                        help="dataset name (default: the run's own data; mnist-sample for a model name)")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset's files")
    parser.add_argument("--split", default=None, choices=("train", "validation", "test"),
                        help="split to use (default: train for gradients, test otherwise)")
    parser.add_argument("--examples", type=int, default=examples, help="number of examples used")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="diagnostic", metavar="DIAGNOSTIC", required=True)

    p = sub.add_parser("gradients", help="per-layer gradient norms of the loss (vanishing gradients)")
    _add_source(p)
    _add_data(p, examples=1000)

    p = sub.add_parser("features", help="feature maps of one image, a grid per layer")
    _add_source(p)
    _add_images(p, many=False)
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: one per stage)")

    p = sub.add_parser("ideal", help="the input each class likes best, by gradient ascent on its logit")
    _add_source(p)
    p.add_argument("--class", dest="classes", action="append", default=None, metavar="NAME|ID",
                   help="class to visualise (repeatable; default: every class, at most 10)")
    p.add_argument("--steps", type=int, default=None, help="gradient-ascent steps")

    p = sub.add_parser("attack", help="adversarial examples (FGSM or PGD), targeted or not")
    _add_source(p)
    _add_images(p, many=True)
    p.add_argument("--eps", type=float, default=None,
                   help="L-inf budget in pixels of 0-255 (default 0.1x255 untargeted, 0.3x255 targeted)")
    p.add_argument("--method", choices=("pgd", "fgsm"), default="pgd")
    p.add_argument("--class", dest="label", default=None, metavar="NAME|ID",
                   help="the images' true class (default: the model's prediction)")
    p.add_argument("--target", default=None, metavar="NAME|ID",
                   help="make the model answer this class (targeted attack)")

    p = sub.add_parser("robustness", help="accuracy against attack budget, FGSM and PGD")
    _add_source(p)
    _add_data(p, examples=200)
    p.add_argument("--eps", default="0,2,4,8,16,25.5,38", help="comma-separated budgets in pixels")
    p.add_argument("--pgd-steps", type=int, default=10)

    p = sub.add_parser("gradcam", help="Grad-CAM heatmap with saliency and SmoothGrad")
    _add_source(p)
    _add_images(p, many=True)
    p.add_argument("--class", dest="label", default=None, metavar="NAME|ID",
                   help="class to explain (default: the model's prediction)")
    p.add_argument("--layer", default=None, help="feature-map layer (default: the last one)")


def run(args: argparse.Namespace) -> int:
    """The `tfresnet inspect` verb. Bad input raises ValueError or FileNotFoundError naming the
    value, which `tfresnet.cli` prints as one line with exit code 2 (the traceback with --debug)."""
    data = None
    if args.diagnostic in DATA_DIAGNOSTICS and not _is_path(args.source) and not args.input_shape:
        # An untrained registry model takes the data's own shape (28x28x1 for MNIST) unless told.
        data = _data(None, args, DATA_DIAGNOSTICS[args.diagnostic])
        args.input_shape = ",".join(map(str, data[0].shape[1:]))
    subject = _subject(args)
    if args.diagnostic in DATA_DIAGNOSTICS:
        args.arrays = data or _data(subject.image_shape, args, DATA_DIAGNOSTICS[args.diagnostic])
    out = args.out or (os.path.join(args.source, "inspect") if os.path.isdir(args.source)
                       else f"inspect-{os.path.basename(os.path.normpath(args.source))}")
    os.makedirs(out, exist_ok=True)
    for path in DIAGNOSTICS[args.diagnostic](subject, args, out):
        print(f"wrote {path}")
    return 0


def _is_path(source: str) -> bool:
    return os.path.isdir(source) or source.endswith(".keras")


def _subject(args):
    from tfresnet.inspect.common import load_subject

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3:
            raise ValueError(f"--input-shape takes H,W,C, e.g. 28,28,1. Received {args.input_shape!r}")
    return load_subject(args.source, input_shape=shape, num_classes=args.num_classes, seed=args.seed)


def _images(subject, args):
    import numpy as np

    from tfresnet.inspect.common import load_image

    return np.stack([load_image(path, subject.image_shape, convert=args.convert) for path in args.images])


def _labels(subject, x, value):
    """The class given by the user for every image, else the model's prediction."""
    import numpy as np

    from tfresnet.inspect.common import resolve_class

    if value is not None:
        return np.full(len(x), resolve_class(value, subject.class_names))
    return np.argmax(np.asarray(subject.model.predict_on_batch(x)), axis=-1)


def _data(image_shape, args, default_split: str):
    """Up to `--examples` (images, labels) of the run's data, or of `--data`, as arrays.

    `image_shape` is the model's H x W x C; None keeps the dataset's own size.
    """
    import numpy as np

    from tfresnet import data as data_lib

    if args.examples < 1:
        raise ValueError(f"--examples must be >= 1. Received --examples={args.examples}")
    config = {}
    config_path = os.path.join(args.source, "config.json") if os.path.isdir(args.source) else None
    if config_path and os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    name = args.data or config.get("data") or "mnist-sample"
    bundle = data_lib.load(
        name, data_dir=args.data_dir or config.get("data_dir"),
        image_size=None if image_shape is None else tuple(image_shape[:2]),
        batch_size=min(args.examples, 256), seed=args.seed, shuffle=False, label_mode="int",
        verbose=0, **({} if args.data else config.get("data_args") or {}),
    )
    if image_shape is not None and tuple(bundle.input_shape) != tuple(image_shape):
        raise ValueError(
            f"{name} images are {'x'.join(map(str, bundle.input_shape))}; the model takes "
            f"{'x'.join(map(str, image_shape))}."
        )
    split = args.split or default_split
    dataset = getattr(bundle, split) or bundle.test or bundle.validation
    if dataset is None:
        raise ValueError(f"{name} has no {split} split ({bundle.absent.get(split, 'absent')}).")
    xs, ys, count = [], [], 0
    for images, labels in dataset:
        xs.append(np.asarray(images))
        ys.append(np.asarray(labels).astype("int64"))
        count += len(xs[-1])
        if count >= args.examples:
            break
    return np.concatenate(xs)[: args.examples], np.concatenate(ys)[: args.examples]


def _gradients(subject, args, out):
    from tfresnet.inspect import gradients

    x, y = args.arrays
    frame = gradients.gradient_norms(subject.model, x, y)
    csv = os.path.join(out, "gradient_norms.csv")
    frame.to_csv(csv, index=False)
    png = gradients.plot_gradient_norms(frame, os.path.join(out, "gradient_norms.png"))
    return [csv, png]


def _features(subject, args, out):
    from tfresnet.inspect import features

    image = _images(subject, args)[0]
    layers = args.layers.split(",") if args.layers else None
    maps = features.feature_maps(subject.model, image, layers=layers)
    return list(features.plot_feature_maps(maps, os.path.join(out, "features")))


def _ideal(subject, args, out):
    from tfresnet.inspect import ideal
    from tfresnet.inspect.common import resolve_class

    names = subject.class_names
    ids = ([resolve_class(c, names) for c in args.classes] if args.classes
           else list(range(min(len(names), 10))))
    kwargs = {"seed": args.seed}
    if args.steps is not None:
        kwargs["steps"] = args.steps
    images, probabilities = ideal.ideal_images(subject.model, ids, **kwargs)
    png = ideal.plot_ideal_images(images, probabilities, os.path.join(out, "ideal.png"),
                                  class_names=[names[i] for i in ids])
    path = os.path.join(out, "ideal.json")
    _write_json(path, [{"class_id": i, "class": names[i], "probability": float(p)}
                       for i, p in zip(ids, probabilities)])
    return [png, path]


def _attack(subject, args, out):
    import numpy as np

    from tfresnet.inspect import adversarial
    from tfresnet.inspect.common import resolve_class

    x = _images(subject, args)
    y = _labels(subject, x, args.label)
    target = None if args.target is None else resolve_class(args.target, subject.class_names)
    eps = args.eps if args.eps is not None else (0.3 if target is not None else 0.1) * 255
    if args.method == "fgsm":
        x_adv = adversarial.fgsm(subject.model, x, y, eps, target=target)
    else:
        x_adv = adversarial.pgd(subject.model, x, y, eps, target=target, seed=args.seed)
    png = adversarial.plot_adversarial(subject.model, x, x_adv, os.path.join(out, "attack.png"),
                                       class_names=subject.class_names)
    before = np.asarray(subject.model.predict_on_batch(x))
    after = np.asarray(subject.model.predict_on_batch(x_adv))
    names = subject.class_names
    rows = [{"image": path, "label": names[int(label)], "method": args.method, "eps": eps,
             "target": None if target is None else names[target],
             "before": names[int(b.argmax())], "p_before": float(b.max()),
             "after": names[int(a.argmax())], "p_after": float(a.max()),
             "max_abs_change": float(np.abs(xa - xo).max())}
            for path, label, b, a, xa, xo in zip(args.images, y, before, after, x_adv, x)]
    path = os.path.join(out, "attack.json")
    _write_json(path, rows)
    for row in rows:
        print(f"{row['image']}: {row['before']} ({row['p_before']:.3f}) -> "
              f"{row['after']} ({row['p_after']:.3f})")
    return [png, path]


def _robustness(subject, args, out):
    from tfresnet.inspect import adversarial

    try:
        eps = [float(v) for v in args.eps.split(",")]
    except ValueError:
        raise ValueError(f"--eps takes comma-separated numbers of pixels. Received {args.eps!r}") from None
    x, y = args.arrays
    frame = adversarial.robustness(subject.model, (x, y), eps=eps, pgd_steps=args.pgd_steps)
    csv = os.path.join(out, "robustness.csv")
    frame.to_csv(csv, index=False)
    print(frame.to_string(index=False))
    return [csv, adversarial.plot_robustness(frame, os.path.join(out, "robustness.png"))]


def _gradcam(subject, args, out):
    from tfresnet.inspect import gradcam

    x = _images(subject, args)
    y = _labels(subject, x, args.label)
    written = []
    for path, image, label in zip(args.images, x, y):
        heatmap = gradcam.grad_cam(subject.model, image, int(label), layer=args.layer)
        stem = os.path.splitext(os.path.basename(path))[0]
        written.append(gradcam.plot_grad_cam(
            image, heatmap, os.path.join(out, f"gradcam-{stem}.png"),
            saliency=gradcam.saliency(subject.model, image, int(label)),
            smoothgrad=gradcam.smoothgrad(subject.model, image, int(label), seed=args.seed),
            title=f"{stem}: {subject.class_names[int(label)]}",
        ))
    return written


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)


# diagnostics that read a dataset -> the split they use by default
DATA_DIAGNOSTICS = {"gradients": "train", "robustness": "test"}

# diagnostic -> function(subject, args, out_dir) -> written paths
DIAGNOSTICS = {
    "gradients": _gradients,
    "features": _features,
    "ideal": _ideal,
    "attack": _attack,
    "robustness": _robustness,
    "gradcam": _gradcam,
}
