"""`tfresnet inspect`: each diagnostic of `tfresnet.inspect` as one command that writes PNGs and data.

    tfresnet inspect gradients  SOURCE [--data NAME] [--examples N]
    tfresnet inspect features   SOURCE IMAGE [--layers L1,L2]
    tfresnet inspect ideal      SOURCE [--class NAME|ID ...]
    tfresnet inspect attack     SOURCE IMAGE... [--eps PIXELS | --min-eps] [--method pgd|fgsm] [--target NAME|ID]
    tfresnet inspect robustness SOURCE [--eps 0,8,16,...] [--examples N]
    tfresnet inspect gradcam    SOURCE IMAGE... [--class NAME|ID] [--layer NAME]

SOURCE is a finished run directory (its `model.keras` and `class_names.json`), a `.keras` file or
a registry model name (untrained: gradient flow at initialisation). Class names come from the run,
from `--class-names FILE` or a `class_names.json` beside a `.keras` file, or, for a model with 1000
outputs, are ImageNet's; classes can be given by name or id. Data for `gradients` and `robustness`
are loaded with the run's resize mode and matched to the model's classes by name, as `tfresnet
evaluate` does: data whose classes the model does not have are refused. Every command writes into
`--out` (default `SOURCE/inspect` for a run, `inspect-SOURCE` otherwise) and prints what it wrote.
"""

from __future__ import annotations

import argparse
import os

from tfresnet.checks import number
from tfresnet.files import write_json_atomic

__all__ = ["add_arguments", "run"]


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="run directory, .keras file, or registry model name")
    parser.add_argument("--out", default=None, help="output folder (default SOURCE/inspect)")
    parser.add_argument("--input-shape", default=None, metavar="H,W,C",
                        help="for a registry name: the input shape (default: the model's own)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="for a registry name: number of classes (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise, jitter and initial weights")
    parser.add_argument("--class-names", default=None, metavar="FILE",
                        help="class names: a JSON list or one name per line (default: the run's, a "
                             "class_names.json beside a .keras file, ImageNet's for 1000 outputs)")


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
                   help="L-inf budget in pixels of 0-255 (default: 0.1x255 untargeted, 0.3x255 targeted "
                        "for MNIST-like images; 8 and 16 for photos)")
    p.add_argument("--min-eps", action="store_true",
                   help="search for the smallest eps at which the attack succeeds (up to --eps, default 64)")
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
    if args.diagnostic == "robustness":  # a typo in --eps is reported before any data is read
        args.eps_values = _eps_list(args.eps)
    data = None
    if args.diagnostic in DATA_DIAGNOSTICS and not _is_path(args.source) and not args.input_shape:
        # An untrained registry model takes the data's own shape (28x28x1 for MNIST) unless told.
        data = _data(None, args, DATA_DIAGNOSTICS[args.diagnostic])
        args.input_shape = ",".join(map(str, data[0].shape[1:]))
    subject = _subject(args)
    for note in subject.notes:
        print(f"note: {note}")
    if args.diagnostic in DATA_DIAGNOSTICS:
        data = data or _data(subject.image_shape, args, DATA_DIAGNOSTICS[args.diagnostic])
        *data, args.split_used = data
        args.arrays = _match_labels(subject, *data)
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
    return load_subject(args.source, input_shape=shape, num_classes=args.num_classes, seed=args.seed,
                        class_names=args.class_names)


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


def _run_config(source: str):
    """The run's `TrainConfig` when `source` is a run directory with one, else None."""
    from tfresnet.runs import RunDir

    run = RunDir(source)
    return run.config if run.exists() and run.is_configured() else None


def _data(image_shape, args, default_split: str):
    """Up to `--examples` (images, labels, the data's class names, the split used) of the run's
    data, or of `--data`.

    `image_shape` is the model's H x W x C; None keeps the dataset's own size. Images are fitted
    to it with the run's resize mode; for the run's own data its options, validation fraction and
    seed are used, so the splits are the run's (as in `tfresnet evaluate`).
    """
    import numpy as np

    from tfresnet import data as data_lib

    number(args.examples, "--examples", integer=True)
    config = _run_config(args.source)
    name = args.data or (config.data if config else "mnist-sample")
    own = {} if config is None or (args.data and args.data != config.data) else config.split_args()
    own["data_dir"] = args.data_dir or own.get("data_dir")
    bundle = data_lib.load(
        name, **{"seed": args.seed, **own},
        image_size=None if image_shape is None else tuple(image_shape[:2]),
        resize=config.resize_mode if config else "resize", batch_size=min(args.examples, 256),
        shuffle=False, label_mode="int", verbose=0,
    )
    if image_shape is not None and tuple(bundle.input_shape) != tuple(image_shape):
        raise ValueError(
            f"{name} images are {'x'.join(map(str, bundle.input_shape))}; the model takes "
            f"{'x'.join(map(str, image_shape))}."
        )
    split = args.split or default_split
    used = next((s for s in (split, "test", "validation") if getattr(bundle, s) is not None), None)
    if used is None:
        raise ValueError(f"{name} has no {split} split ({bundle.absent.get(split, 'absent')}).")
    xs, ys, count = [], [], 0
    for images, labels in getattr(bundle, used):
        xs.append(np.asarray(images))
        ys.append(np.asarray(labels).astype("int64"))
        count += len(xs[-1])
        if count >= args.examples:
            break
    return (np.concatenate(xs)[: args.examples], np.concatenate(ys)[: args.examples],
            list(bundle.class_names), used)


def _match_labels(subject, x, y, data_names):
    """`y` as the model's class ids, matched by name; refused, naming both sides, when they differ.

    Without names of its own (an untrained registry model), a model's classes are positions: the
    data must have as many.
    """
    import numpy as np

    from tfresnet.inspect.common import choices_text
    from tfresnet.using.evaluate import match_classes

    model_names = subject.class_names
    if subject.names_from is None:
        if len(data_names) != len(model_names):
            raise ValueError(
                f"The data have {len(data_names)} classes ({choices_text(data_names, 8)}); the model has "
                f"{len(model_names)} outputs and no class names: pass --num-classes "
                f"{len(data_names)} for a registry model, or --class-names FILE."
            )
        return x, y
    try:
        mapping, notes = match_classes(model_names, data_names)
    except ValueError:
        unknown = [n for n in data_names if n not in model_names]
        raise ValueError(
            f"The data's classes do not match the model's: only in the data ({len(unknown)}): "
            f"{choices_text(unknown, 8)}; the model's {len(model_names)} classes ({subject.names_from} "
            f"names): {choices_text(model_names, 8)}. No prediction of the model could be right for "
            f"those images: use data whose classes are among the model's."
        ) from None
    for note in notes:
        print(f"note: {note}")
    return x, np.asarray(mapping, dtype="int64")[y]


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

    from tfresnet.inspect import adversarial, budgets
    from tfresnet.inspect.common import resolve_class

    x = _images(subject, args)
    y = _labels(subject, x, args.label)
    target = None if args.target is None else resolve_class(args.target, subject.class_names)
    if args.min_eps:
        found = budgets.smallest_eps(subject.model, x, target=target, y=None if target is not None else y,
                                     method=args.method, eps_max=args.eps or 64.0)
        x_adv, eps = found.x_adv, [None if np.isnan(e) else float(e) for e in found.eps]
    else:
        value = args.eps if args.eps is not None else budgets.default_eps(x.shape[1:], targeted=target is not None)
        if args.method == "fgsm":
            x_adv = adversarial.fgsm(subject.model, x, y, value, target=target)
        else:
            x_adv = adversarial.pgd(subject.model, x, y, value, target=target, seed=args.seed)
        eps = [value] * len(x)
    png = adversarial.plot_adversarial(subject.model, x, x_adv, os.path.join(out, "attack.png"),
                                       class_names=subject.class_names)
    rows = _attack_rows(subject, args, x, y, x_adv, target, eps)
    path = os.path.join(out, "attack.json")
    _write_json(path, rows)
    for row in rows:
        print(_attack_line(row))
    return [png, path]


def _attack_rows(subject, args, x, y, x_adv, target, eps) -> list[dict]:
    import numpy as np

    names = subject.class_names
    before = np.asarray(subject.model.predict_on_batch(x))
    after = np.asarray(subject.model.predict_on_batch(x_adv))
    rows = []
    for path, label, b, a, xa, xo, e in zip(args.images, y, before, after, x_adv, x, eps):
        answer = int(a.argmax())
        rows.append({
            "image": path, "label": names[int(label)], "method": args.method, "eps": e,
            "eps_search": bool(args.min_eps), "target": None if target is None else names[target],
            "before": names[int(b.argmax())], "p_before": float(b.max()),
            "after": names[answer], "p_after": float(a.max()),
            # targeted: the model answers the target; untargeted: it no longer answers the label
            "succeeded": bool(answer == target if target is not None else answer != int(label)),
            "max_abs_change": float(np.abs(xa - xo).max()),
        })
    return rows


def _attack_line(row: dict) -> str:
    goal = f"target {row['target']}" if row["target"] is not None else f"away from {row['label']}"
    if row["eps"] is None:
        verdict = f"{goal} NOT reached at any eps searched (answer {row['after']})"
    else:
        at = "smallest eps" if row["eps_search"] else "eps"
        verdict = (f"{goal} reached at {at} {row['eps']:.2f} px" if row["succeeded"]
                   else f"{goal} NOT reached at eps {row['eps']:.2f} px (answer {row['after']})")
    return (f"{row['image']}: {row['before']} ({row['p_before']:.3f}) -> {row['after']} "
            f"({row['p_after']:.3f}); {verdict}")


def _robustness(subject, args, out):
    from tfresnet.inspect import adversarial

    x, y = args.arrays
    frame = adversarial.robustness(subject.model, (x, y), eps=args.eps_values, pgd_steps=args.pgd_steps)
    csv = os.path.join(out, "robustness.csv")
    frame.to_csv(csv, index=False)
    print(frame.to_string(index=False))
    return [csv, adversarial.plot_robustness(frame, os.path.join(out, "robustness.png"), split=args.split_used,
                                                  classes=_classes(subject))]


def _classes(subject) -> int | None:
    """The classes chance is counted over; None for one output unit, whose chance is unknown here."""
    return len(subject.class_names) if len(subject.class_names) > 1 else None


def _eps_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--eps takes comma-separated numbers of pixels. Received {text!r}") from None


def _gradcam(subject, args, out):
    import numpy as np

    from tfresnet.inspect import gradcam

    x = _images(subject, args)
    y = _labels(subject, x, args.label)
    written = []
    for path, image, label in zip(args.images, x, y):
        heatmap = gradcam.grad_cam(subject.model, image, int(label), layer=args.layer)
        stem = os.path.splitext(os.path.basename(path))[0]
        probability = float(np.asarray(subject.model.predict_on_batch(image[None]))[0, int(label)])
        written.append(gradcam.plot_grad_cam(
            image, heatmap, os.path.join(out, f"gradcam-{stem}.png"),
            saliency=gradcam.saliency(subject.model, image, int(label)),
            smoothgrad=gradcam.smoothgrad(subject.model, image, int(label), seed=args.seed),
            title=f"{stem}: {subject.class_names[int(label)]} (p={probability:.3f})",
        ))
    return written


def _write_json(path: str, value) -> None:
    write_json_atomic(path, value, indent=2)


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
