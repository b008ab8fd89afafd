"""Draws the pictures of README's "Seeing inside" section into docs/images/ (one of each kind).

    make demo                                   # trains runs/demo-like ResNet-20 (or pass --run)
    python scripts/make_readme_figures.py --run runs/demo --data-dir ../shared/data

Uses the `make demo` ResNet-20 for features, ideal digits, attacks, robustness and Grad-CAM, and
untrained sigmoid networks on 1,000 real MNIST training digits (the shipped sample without
`--data-dir`) for the vanishing gradients. About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

import tfresnet.data
from tfresnet import inspect
from tfresnet.inspect import features, gradcam, ideal


def _digits(data_dir: str | None, split: str, count: int):
    name = "mnist" if data_dir and os.path.isfile(os.path.join(data_dir, "mnist.npz")) else "mnist-sample"
    bundle = tfresnet.data.load(name, data_dir=data_dir, batch_size=count, shuffle=False,
                                validation_split=0, verbose=0)
    x, y = next(iter(getattr(bundle, split)))
    return np.asarray(x), np.asarray(y)


def vanishing_gradients(out: str, data_dir: str | None) -> str:
    x, y = _digits(data_dir, "train", 1000)
    frames = []
    for hidden in range(1, 5):
        model = tfresnet.create_model(f"sigmoid_mlp_30x{hidden}", preprocessing="auto")
        frame = inspect.gradient_norms(model, x, y)
        frames.append(frame.assign(model=f"{hidden} hidden layer{'s' if hidden > 1 else ''}"))
    return inspect.plot_gradient_norms(pd.concat(frames), os.path.join(out, "vanishing_gradients.png"),
                                       weight="bias", title="Bias-gradient norm per layer at initialisation")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/demo", help="a finished MNIST run directory")
    parser.add_argument("--data-dir", default=None, help="folder with mnist.npz (else the shipped sample)")
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.run, "model.keras")):
        parser.error(f"{args.run} holds no model.keras: run `make demo` first, or pass --run RUN_DIR")
    os.makedirs(args.out, exist_ok=True)
    written = [vanishing_gradients(args.out, args.data_dir)]

    subject = inspect.load_subject(args.run)
    model, names = subject.model, subject.class_names
    x, y = _digits(None, "test", 200)  # the sample's test digits: what `make demo` reports on
    first_layer = next(iter(features.feature_maps(model, x[0])))  # the first convolution: strokes
    maps = features.feature_maps(model, x[0], layers=[first_layer])
    written += features.plot_feature_maps(maps, os.path.join(args.out, "feature_maps.png"), max_channels=16)
    images, probabilities = ideal.ideal_images(model, list(range(len(names))))
    written.append(ideal.plot_ideal_images(images, probabilities, os.path.join(args.out, "ideal_digits.png"),
                                           class_names=names))
    x_adv = inspect.pgd(model, x[:3], y[:3], eps=0.3 * 255, target=3)
    written.append(inspect.plot_adversarial(model, x[:3], x_adv, os.path.join(args.out, "adversarial.png"),
                                            class_names=names))
    frame = inspect.robustness(model, (x, y), eps=[0, 8, 16, 25.5, 38, 51])
    written.append(inspect.plot_robustness(frame, os.path.join(args.out, "robustness.png"), split="test"))
    label = int(y[1])
    written.append(gradcam.plot_grad_cam(
        x[1], gradcam.grad_cam(model, x[1], label), os.path.join(args.out, "grad_cam.png"),
        saliency=gradcam.saliency(model, x[1], label), smoothgrad=gradcam.smoothgrad(model, x[1], label),
        title=f"test digit {names[label]}"))
    for path in written:
        print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")
    print(frame.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
