"""TrainConfig.ema: the kept, validated and checkpointed weights are Keras' average, and a resumed
run continues it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfresnet import cli
from tfresnet.runs import RunDir
from tfresnet.training import averaging
from tfresnet.training.callbacks import AtomicBackupAndRestore, AtomicModelCheckpoint, make_callbacks
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.session import OPTIMIZERS

MOMENTUM = 0.5
X = np.linspace(-1, 1, 32, dtype="float32").reshape(16, 2)
Y = X @ np.array([[2.0], [-1.0]], "float32") + 0.5


class _Raw(keras.callbacks.Callback):
    """The raw weights after every step, and what validation scored at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.steps, self.val_loss = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([w.copy() for w in self.model.get_weights()])

    def on_epoch_end(self, epoch, logs=None):
        self.val_loss.append(logs["val_loss"])


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def _model(config):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(OPTIMIZERS[config.optimizer](config, 0.05), "mse")
    return model


def _fit(config, run_dir, epochs=4, extra=()):
    run_dir.mkdir(parents=True, exist_ok=True)
    model = _model(config)
    callbacks = make_callbacks(config, str(run_dir), phase="train", has_validation=True)
    checkpoint = next(c for c in callbacks if isinstance(c, AtomicModelCheckpoint))
    backup = next(c for c in callbacks if isinstance(c, AtomicBackupAndRestore))
    # As Session.fit_phase does.
    callbacks = averaging.with_weight_choice(callbacks, config, str(run_dir), first_monitor=checkpoint,
                                             checkpoint=checkpoint, backup=backup)
    model.fit(X, Y, batch_size=4, epochs=epochs, shuffle=False, verbose=0, validation_data=(X[:8], Y[:8]),
              callbacks=[*callbacks, *extra])
    return model


def _average(steps):
    """Keras' EMA: the first step's weights, then momentum * average + (1 - momentum) * weights."""
    average = steps[0]
    trail = [average]
    for weights in steps[1:]:
        average = [MOMENTUM * a + (1 - MOMENTUM) * w for a, w in zip(average, weights)]
        trail.append(average)
    return trail


def _close(a, b):
    return all(np.allclose(x, y, atol=1e-6) for x, y in zip(a, b))


def _loaded(config, path):
    model = _model(config)
    model.load_weights(path)
    return model


def test_final_weights_checkpoint_and_validation_are_the_average(tmp_path):
    config = TrainConfig(optimizer="sgd", ema=MOMENTUM, monitor="val_loss", tensorboard=False)
    raw = _Raw()
    model = _fit(config, tmp_path, extra=[raw])
    trail = _average(raw.steps)  # 4 steps an epoch
    assert _close(model.get_weights(), trail[-1])
    assert not _close(model.get_weights(), raw.steps[-1])  # the average is not the last raw weights
    best = int(np.argmin(raw.val_loss))
    at_epoch_end = trail[4 * best + 3]
    checkpointed = _loaded(config, tmp_path / RunDir.BEST)
    assert _close(checkpointed.get_weights(), at_epoch_end)
    # Beside it, the raw weights of the same epoch, for `export --weights raw`.
    beside = _loaded(config, tmp_path / RunDir.EMA_WEIGHTS["raw"])
    assert _close(beside.get_weights(), raw.steps[4 * best + 3])
    assert not _close(beside.get_weights(), at_epoch_end)
    # Validation scored the average, not the raw weights of that moment.
    checkpointed.compile(loss="mse")
    assert raw.val_loss[best] == pytest.approx(checkpointed.evaluate(X[:8], Y[:8], verbose=0), rel=1e-5)


def test_the_raw_choice_validates_checkpoints_and_keeps_the_raw_weights(tmp_path):
    config = TrainConfig(optimizer="sgd", ema=MOMENTUM, ema_weights="raw", monitor="val_loss",
                         early_stopping=3, tensorboard=False)
    raw = _Raw()
    model = _fit(config, tmp_path, epochs=6, extra=[raw])
    trail = _average(raw.steps)
    best = int(np.argmin(raw.val_loss))
    # Early stopping restored its best epoch's raw weights, not Keras' average of the last step.
    assert _close(model.get_weights(), raw.steps[4 * best + 3])
    checkpointed = _loaded(config, tmp_path / RunDir.BEST)
    assert _close(checkpointed.get_weights(), raw.steps[4 * best + 3])
    assert _close(_loaded(config, tmp_path / RunDir.EMA_WEIGHTS["averaged"]).get_weights(), trail[4 * best + 3])
    checkpointed.compile(loss="mse")
    assert raw.val_loss[best] == pytest.approx(checkpointed.evaluate(X[:8], Y[:8], verbose=0), rel=1e-5)


def _finished_run(path, config: TrainConfig) -> RunDir:
    """A run directory with a one-layer model.keras and, with ema, the other set beside it."""
    run = RunDir(path)
    model = _model(config)
    run.save_model(model)
    run.write_config(config)
    run.write_class_names(["y"])
    if config.ema is not None:
        model.set_weights([w + 1 for w in model.get_weights()])
        model.save_weights(run.file(RunDir.EMA_WEIGHTS[averaging.other_weights(config)]))
    return run


def test_a_run_gives_either_set_and_a_run_without_ema_refuses_the_choice(tmp_path, capsys):
    config = TrainConfig(optimizer="sgd", ema=MOMENTUM)
    run = _finished_run(tmp_path / "ema", config)
    kept = run.load_model().get_weights()
    assert _close(run.load_model(weights="averaged").get_weights(), kept)
    assert _close(run.load_model(weights="raw").get_weights(), [w + 1 for w in kept])

    plain = _finished_run(tmp_path / "plain", TrainConfig(optimizer="sgd"))
    with pytest.raises(ValueError, match="trained without ema"):
        plain.load_model(weights="raw")
    assert cli.main(["export", plain.path, "--weights", "raw"]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained without ema" in err and len(err.splitlines()) == 1


def test_a_resumed_run_keeps_the_average(tmp_path):
    config = TrainConfig(optimizer="sgd", ema=MOMENTUM, monitor="val_loss", tensorboard=False)
    whole = _fit(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        _fit(config, tmp_path / "killed", extra=[_Interrupt()])
    resumed = _fit(config, tmp_path / "killed")  # a new model and optimizer, restored from the backup
    assert _close(resumed.get_weights(), whole.get_weights())


def test_optimizer_gets_betas_and_average_from_the_config():
    config = TrainConfig(optimizer="adam", adam_beta_1=0.7, adam_beta_2=0.9, ema=0.95)
    optimizer = OPTIMIZERS["adam"](config, 1e-3)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.use_ema, optimizer.ema_momentum) == (0.7, 0.9, True, 0.95)
    assert not OPTIMIZERS["sgd"](TrainConfig(), 0.1).use_ema


@pytest.mark.parametrize("key, value", [("ema", 1.0), ("ema", 0.0), ("adam_beta_1", 1.0), ("adam_beta_2", -0.1)])
def test_bad_betas_and_momentum_name_the_value(key, value):
    with pytest.raises(ConfigError, match=f"{key}={value!r}"):
        TrainConfig(**{key: value}).validate()
