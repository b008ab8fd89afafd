"""Draws the lesson's pictures on a real ImageNet network into docs/images/imagenet_*.png.

    python scripts/make_imagenet_figures.py --weights-dir ../shared/data/imagenet_weights \\
        --pets ../shared/data/oxford_iiit_pet_sample --out docs/images [--pets-run RUN_DIR]

The network is keras.applications' MobileNet v1 (alpha 0.25, 128 px) with its 1000-class
classifier, loaded into the registry's ``mobilenetv1`` (raw pixels in): the only ImageNet
classifier whose weights are on the offline development machine (the lesson's VGG-16 is not).
Draws the ideal tabby cat (281) and zebra (340), a bulldog photo turned into a tabby at the
smallest eps that does it, feature maps of a cat photo at an early and a middle block, Grad-CAM
on a cat and a dog, and with ``--pets-run`` the robustness curve of that run on its test split
(its own resize mode). Prints the measured numbers and writes them to ``imagenet_figures.json``
beside the PNGs. About 30 s on 2 CPU cores (without --pets-run).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import keras
import numpy as np

import tfresnet
from tfresnet import inspect
from tfresnet.files import write_atomic
from tfresnet.models.pretrained import WEIGHTS_DIR_ENV, imagenet_class_names
from tfresnet.runs import RunDir

WEIGHTS_FILE = "mobilenet_2_5_128_tf.h5"
TABBY, ZEBRA = 281, 340
CAT, DOG = "Bengal_109.jpg", "american_bulldog_10.jpg"  # top-1 tabby (p 0.60); a terrier, p(tabby) < 0.001
EARLY, MIDDLE = "conv_pw_1_relu", "conv_pw_5_relu"  # 64x64 (block 1) and 16x16 (block 5) of 128 px
# Ideal images: Simonyan et al.'s logit ascent with total variation and jitter (tfresnet.inspect.ideal);
# 300 steps leave both at p >= 0.97 on this network, 200 left the tabby at 0.93.
IDEAL_OPTIONS = {"steps": 300, "lr": 4.0, "tv_weight": 10.0, "jitter": 6}


def imagenet_mobilenet(weights_dir: str) -> keras.Model:
    return tfresnet.create_model("mobilenetv1", alpha=0.25, input_shape=(128, 128, 3), num_classes=1000,
                                 preprocessing="auto", weights=os.path.join(weights_dir, WEIGHTS_FILE))


def _top(model, x, names, k=3) -> list:
    p = keras.ops.convert_to_numpy(model(x[None], training=False))[0]
    return [(names[i], round(float(p[i]), 4)) for i in np.argsort(-p)[:k]]


def ideal(model, names, out, numbers) -> str:
    start = time.perf_counter()
    images, probabilities = inspect.ideal_images(model, [TABBY, ZEBRA], **IDEAL_OPTIONS)
    numbers["ideal"] = {"seconds": round(time.perf_counter() - start, 1), "options": IDEAL_OPTIONS,
                        **{names[c]: round(float(p), 4) for c, p in zip((TABBY, ZEBRA), probabilities)}}
    return inspect.plot_ideal_images(images, probabilities, os.path.join(out, "imagenet_ideal.png"),
                                     class_names=[f"{names[c]} ({c})" for c in (TABBY, ZEBRA)])


def adversarial(model, names, dog, out, numbers) -> str:
    start = time.perf_counter()
    found = inspect.smallest_eps(model, dog[None], target=TABBY, tolerance=0.05)
    numbers["adversarial"] = {
        "image": DOG, "target": names[TABBY], "reached": bool(found.reached[0]),
        "smallest_eps_pixels": round(float(found.eps[0]), 3), "trials": found.trials,
        "seconds": round(time.perf_counter() - start, 1),
        "before": _top(model, dog, names), "after": _top(model, found.x_adv[0], names)}
    return inspect.plot_adversarial(model, dog[None], found.x_adv, os.path.join(out, "imagenet_adversarial.png"),
                                    class_names=names)


def features(model, cat, out, numbers) -> str:
    maps = inspect.feature_maps(model, cat, layers=[EARLY, MIDDLE])
    numbers["feature_maps"] = {"image": CAT, **{k: list(v.shape) for k, v in maps.items()}}
    title = (f"Feature maps of {CAT} (a Bengal cat) in MobileNet v1 0.25 on ImageNet, an early and a middle block\n"
             f"(the lesson shows VGG-16's; its ImageNet weights are not available offline)")
    return inspect.plot_feature_maps(maps, os.path.join(out, "imagenet_feature_maps.png"), max_channels=8,
                                     title=title)[0]


def grad_cams(model, names, photos, out, numbers) -> list[str]:
    written = []
    for label, (file, image) in photos.items():
        top = _top(model, image, names, k=1)[0]
        class_id = names.index(top[0])
        written.append(inspect.plot_grad_cam(
            image, inspect.grad_cam(model, image, class_id), os.path.join(out, f"imagenet_grad_cam_{label}.png"),
            saliency=inspect.saliency(model, image, class_id),
            smoothgrad=inspect.smoothgrad(model, image, class_id),
            title=f"{file}: Grad-CAM of its top class {top[0]} (p={top[1]:.2f}), layer conv_pw_13_relu (4x4)"))
        numbers.setdefault("grad_cam", {})[file] = {"class": top[0], "probability": top[1]}
    return written


def pets_robustness(run_dir: str, out: str, numbers) -> str:
    from tfresnet.cli import main

    folder = os.path.join(run_dir, "inspect")  # the CSV stays with its run
    start = time.perf_counter()
    if main(["inspect", "robustness", run_dir, "--eps", "0,0.5,1,2,4,8", "--examples", "1000", "--out", folder]):
        raise SystemExit(f"tfresnet inspect robustness {run_dir} failed")
    import pandas as pd

    frame = pd.read_csv(os.path.join(folder, "robustness.csv"))
    numbers["pets_robustness"] = {"run": run_dir, "seconds": round(time.perf_counter() - start, 1),
                                  "rows": frame.to_dict(orient="records")}
    return inspect.plot_robustness(frame, os.path.join(out, "imagenet_pets_robustness.png"), split="test",
                                   classes=len(RunDir(run_dir).class_names))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", default="../shared/data/imagenet_weights")
    parser.add_argument("--pets", default="../shared/data/oxford_iiit_pet_sample")
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--pets-run", default=None, help="a finished Oxford-IIIT Pet run: its robustness curve")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.weights_dir, WEIGHTS_FILE)):
        parser.error(f"{args.weights_dir} holds no {WEIGHTS_FILE}")
    os.environ[WEIGHTS_DIR_ENV] = args.weights_dir  # where imagenet_class_index.json is
    os.makedirs(args.out, exist_ok=True)
    model, names = imagenet_mobilenet(args.weights_dir), imagenet_class_names()
    photos = {label: (file, inspect.load_image(os.path.join(args.pets, "images", file), (128, 128, 3)))
              for label, file in (("cat", CAT), ("dog", DOG))}
    numbers, start = {}, time.perf_counter()
    written = [ideal(model, names, args.out, numbers),
               adversarial(model, names, photos["dog"][1], args.out, numbers),
               features(model, photos["cat"][1], args.out, numbers),
               *grad_cams(model, names, photos, args.out, numbers)]
    if args.pets_run:
        written.append(pets_robustness(args.pets_run, args.out, numbers))
    numbers["seconds"] = round(time.perf_counter() - start, 1)
    path = os.path.join(args.out, "imagenet_figures.json")
    write_atomic(path, json.dumps(numbers, indent=2))
    for item in [*written, path]:
        print(f"wrote {item} ({os.path.getsize(item) / 1024:.0f} KiB)")
    print(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
