"""Input-pipeline throughput: images/second for decode + resize + augment + batch.

Runs `tfresnet.data.load` on the Oxford-IIIT Pet sample (../shared/data/oxford_iiit_pet_sample)
at 224x224 and times full passes over the training split, for each combination of

- cache: ``none`` (every epoch reads and decodes the JPEGs) or ``memory`` (the first epoch fills
  the cache with decoded, resized uint8 images; later epochs only shuffle, batch and augment);
- augment: ``none`` and ``standard`` (flip, rotation, zoom, translation, contrast).

Epoch 1 includes building the tf.data graph (and, cached, filling the cache): it is the "cold"
number; the mean of the later epochs is the steady "warm" one. Validation of the image files
(decoding each once with Pillow) is timed separately, cold, with an empty cache directory.

    python benchmarks/input_pipeline.py                       # ~1 minute on 2 CPU cores
    python benchmarks/input_pipeline.py --epochs 5 --batch-size 64 --out /tmp/ip.json

Writes JSON (default benchmarks/results/input_pipeline.json) and prints a table. Numbers depend
on the CPU and on what else runs on it: compare runs from the same machine only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time

# Before TensorFlow is imported: its C++ start-up logging would clutter the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from tfresnet import data
from tfresnet.data.oxford_iiit_pet import index_directory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPO, "..", "shared", "data", "oxford_iiit_pet_sample")
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "input_pipeline.json")


def time_validation(data_dir: str) -> dict:
    """Times validating every listed image with an empty cache (the cold path)."""
    index = index_directory(data_dir)
    paths = [f.path for f in index.files]
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        data.validate_images(paths, cache_dir=cache)
        seconds = time.perf_counter() - start
    return {"files": len(paths), "seconds": seconds, "files_per_s": len(paths) / seconds}


def time_pipeline(data_dir: str, *, cache, augment, image_size, batch_size, epochs, cache_dir) -> dict:
    """Times `epochs` full passes over the training split of one configuration."""
    bundle = data.load(
        "oxford_iiit_pet",
        data_dir=data_dir,
        image_size=image_size,
        batch_size=batch_size,
        augment=augment,
        cache=cache,
        cache_dir=cache_dir,
        verbose=0,
    )
    n = bundle.num_examples["train"]
    per_epoch = []
    for _ in range(epochs):
        start = time.perf_counter()
        seen = 0
        for images, _ in bundle.train:
            seen += int(images.shape[0])
        per_epoch.append(time.perf_counter() - start)
        assert seen == n, (seen, n)
    warm = per_epoch[1:] or per_epoch
    return {
        "cache": cache or "none",
        "augment": augment,
        "images_per_epoch": n,
        "epoch_seconds": per_epoch,
        "cold_images_per_s": n / per_epoch[0],
        "warm_images_per_s": n / (sum(warm) / len(warm)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA, help="Oxford-IIIT Pet layout")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="passes per configuration (>= 2)")
    parser.add_argument("--augment", nargs="+", default=["none", "standard"])
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON file to write")
    args = parser.parse_args(argv)

    data_dir = os.path.abspath(args.data_dir)
    validation = time_validation(data_dir)
    runs = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for cache in (None, "memory"):
            for augment in args.augment:
                runs.append(
                    time_pipeline(
                        data_dir, cache=cache, augment=augment, image_size=args.image_size,
                        batch_size=args.batch_size, epochs=args.epochs, cache_dir=cache_dir,
                    )
                )
    result = {
        "benchmark": "input_pipeline",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "data_dir": data_dir,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "gpus": len(tf.config.list_physical_devices("GPU")),
        },
        "validation": validation,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)

    print(
        f"Validation (Pillow, cold): {validation['files']} files in {validation['seconds']:.2f} s "
        f"= {validation['files_per_s']:.0f} files/s"
    )
    print(f"Train split, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs; images/s")
    print(f"{'cache':<8} {'augment':<10} {'cold (epoch 1)':>15} {'warm (epochs 2+)':>17}")
    for run in runs:
        print(
            f"{run['cache']:<8} {run['augment']:<10} {run['cold_images_per_s']:>15.0f} "
            f"{run['warm_images_per_s']:>17.0f}"
        )
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
