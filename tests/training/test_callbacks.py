import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfresnet.training.callbacks import AtomicBackupAndRestore, NaNLossError, StopOnNaN


def test_nan_stops_training_and_keeps_the_last_good_backup(tmp_path):
    x = np.ones((8, 4), "float32")
    y = np.zeros((8, 1), "float32")
    poisoned = x.copy()
    poisoned[0, 0] = np.nan
    epoch = {"n": 0}

    def batches():
        # Clean data in the first epoch, a NaN in the second.
        epoch["n"] += 1
        data = x if epoch["n"] == 1 else poisoned
        yield data, y

    ds = tf.data.Dataset.from_generator(
        batches, output_signature=(tf.TensorSpec((None, 4)), tf.TensorSpec((None, 1))))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup = tmp_path / "backup"
    with pytest.raises(NaNLossError, match="last good backup"):
        model.fit(ds, epochs=3, verbose=0, callbacks=[
            StopOnNaN(), AtomicBackupAndRestore(str(backup))])
    # The backup is the end of epoch 0: resuming starts at epoch 1.
    assert os.listdir(backup) == ["epoch-000001.weights.h5"]


def test_backup_survives_a_half_written_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    backup = tmp_path / "backup"
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[AtomicBackupAndRestore(str(backup), delete_checkpoint=False)])
    saved = model.get_weights()
    # A kill while writing the next backup leaves only a partial file behind.
    (backup / "partial-epoch-000003.weights.h5").write_bytes(b"\x89HDF garbage")
    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    fresh.compile("sgd", "mse")
    callback = AtomicBackupAndRestore(str(backup), delete_checkpoint=False)
    callback.set_model(fresh)
    callback.on_train_begin()
    assert fresh._initial_epoch == 2
    for a, b in zip(fresh.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
