"""Seeding, and the ``deterministic`` mode in which two runs of a config train identically.

`seed_everything` seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`) and, in
deterministic mode, makes TensorFlow's ops deterministic. The data pipeline does its part
(`tfresnet.data.load(..., deterministic=True)`: ordered parallel maps, each epoch's shuffle
and augmentation keyed by the seed and the epoch, `EpochSync` telling it the epoch), and a
resumed run restores the dropout generators' states from its backup, so a run killed and
resumed ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import zlib

import keras

__all__ = ["seed_everything", "trial_seed", "EpochSync"]


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seeds every generator a run draws from; with `deterministic`, also TensorFlow's op choice.

    `tf.config.experimental.enable_op_determinism` lasts for the rest of the process (TensorFlow
    has no way back) and can make some GPU ops slower or unavailable.
    """
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def trial_seed(seed: int, trial_id: str) -> int:
    """A search trial's seed: fixed by the search seed and the trial id, distinct across trials."""
    return zlib.crc32(f"{seed}/{trial_id}".encode()) % (2**31 - 1)


class EpochSync(keras.callbacks.Callback):
    """Tells a dataset bundle which epoch `fit` starts, so its shuffle and augmentation follow it.

    The training split keys each epoch's order on the epoch number; without this a resumed
    run, or a search trial reusing a loaded dataset, would count its passes from where that
    dataset's last pass left off.
    """

    def __init__(self, bundle):
        super().__init__()
        self.bundle = bundle

    def on_epoch_begin(self, epoch, logs=None):
        self.bundle.set_epoch(epoch)
