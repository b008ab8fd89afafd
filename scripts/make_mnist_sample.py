"""Makes `tfresnet/data/mnist_sample.npz`, the MNIST sample shipped with tfresnet.

A stratified, seeded sample of the full MNIST in Keras' `mnist.npz` layout: 6,000 of the 60,000
training digits and 1,000 of the 10,000 test digits, each class in proportion to its share
(`tfresnet.data.stratified_split`), written with `np.savez_compressed` (about 1.2 MB). The
indices into the full arrays are stored too (`train_indices`, `test_indices`) for provenance.

    python scripts/make_mnist_sample.py                       # reads ../shared/data/mnist.npz
    python scripts/make_mnist_sample.py --source PATH --out PATH --seed 0

Re-running with the same source and seed reproduces the file's arrays exactly.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from tfresnet.data.splits import stratified_split

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(REPO, "..", "shared", "data", "mnist.npz")
DEFAULT_OUT = os.path.join(REPO, "tfresnet", "data", "mnist_sample.npz")


def make_sample(source: str, out: str, *, n_train: int = 6000, n_test: int = 1000, seed: int = 0) -> dict:
    """Writes the sample and returns its arrays."""
    with np.load(source, allow_pickle=False) as full:
        x_train, y_train = full["x_train"], full["y_train"]
        x_test, y_test = full["x_test"], full["y_test"]
    train = stratified_split(y_train, {"sample": n_train}, seed=seed)["sample"]
    test = stratified_split(y_test, {"sample": n_test}, seed=seed)["sample"]
    arrays = {
        "x_train": x_train[train],
        "y_train": y_train[train],
        "x_test": x_test[test],
        "y_test": y_test[test],
        "train_indices": train.astype(np.int32),
        "test_indices": test.astype(np.int32),
        "seed": np.asarray(seed, dtype=np.int64),
    }
    np.savez_compressed(out, **arrays)
    return arrays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="full MNIST in mnist.npz layout")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--train", type=int, default=6000, help="training digits to keep")
    parser.add_argument("--test", type=int, default=1000, help="test digits to keep")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    arrays = make_sample(args.source, args.out, n_train=args.train, n_test=args.test, seed=args.seed)
    size = os.path.getsize(args.out)
    print(
        f"Wrote {args.out}: {len(arrays['y_train']):,} training + {len(arrays['y_test']):,} test "
        f"digits, {size / 1e6:.2f} MB; training digits per class "
        f"{np.bincount(arrays['y_train'], minlength=10).tolist()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
