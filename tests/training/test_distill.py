"""Knowledge distillation (`teacher=RUN_DIR`): Hinton's loss on a hand-worked case, alpha=0 as plain
training, a student pulled towards its teacher, the student saved alone, resume, and the refusals."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from tfresnet.runs import RunDir, load_keras
from tfresnet.training import distill, report
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.losses import make_loss
from tfresnet.training.trainer import train

DIGITS = [str(d) for d in range(10)]


def _softmax_rows(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _teacher_model(input_shape, units, *, seed=0, scale=1.0):
    """A fixed random softmax layer (on pixels times `scale`)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(scale)(inputs))
    outputs = keras.layers.Dense(units, activation="softmax", name="teacher_classifier",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=1.0))(x)
    return keras.Model(inputs, outputs, name="teacher")


def test_the_loss_is_hintons_on_a_hand_worked_case():
    temperature, alpha, smoothing, l2 = 4.0, 0.25, 0.1, 0.01
    inputs = keras.Input((3,))
    logits = keras.layers.Dense(3, use_bias=False, kernel_initializer=keras.initializers.Identity(),
                                kernel_regularizer=keras.regularizers.L2(l2))(inputs)
    student = keras.layers.Softmax()(logits)  # softmax(x)
    teacher_in = keras.Input((3,))
    teacher = keras.Model(teacher_in, keras.layers.Dense(3, activation="softmax", use_bias=False,
                          kernel_initializer=keras.initializers.Identity(gain=2.0))(teacher_in))  # softmax(2x)
    model = distill.Distiller(inputs, student, teacher=distill.Teacher(teacher, "t"),
                              temperature=temperature, alpha=alpha)
    model.compile(loss=make_loss("softmax", smoothing))
    x = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.1]], "float32")
    y = np.array([[1, 0, 0], [0, 0, 1]], "float32")

    s, t = _softmax_rows(x), _softmax_rows(2 * x)
    targets = y * (1 - smoothing) + smoothing / 3
    labels = np.mean(-(targets * np.log(s)).sum(-1))
    q = t ** (1 / temperature) / (t ** (1 / temperature)).sum(-1, keepdims=True)  # softened, renormalised
    p = s ** (1 / temperature) / (s ** (1 / temperature)).sum(-1, keepdims=True)
    soft = temperature**2 * np.mean((q * np.log(q / p)).sum(-1))
    regularisation = l2 * 3  # the identity kernel's squares, not weighted by alpha

    y_pred = model(x)
    trained = float(model.compute_loss(x, y, y_pred, training=True))
    validated = float(model.compute_loss(x, y, y_pred, training=False))
    assert trained == pytest.approx((1 - alpha) * labels + alpha * soft + regularisation, rel=1e-5)
    assert validated == pytest.approx(labels + regularisation, rel=1e-5)  # the student's own loss
    assert abs(soft - labels) > 0.1  # so alpha's weighting is seen


@pytest.fixture(scope="module")
def students():
    """Three students from the same initial weights, trained alike on a teacher's own labels:
    plain, distilled at alpha=0 and at alpha=0.5; with their losses and the KL before training."""
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    teacher = _teacher_model((8,), 4, seed=3)  # peaked, but not one-hot, on these inputs
    y = keras.utils.to_categorical(np.asarray(teacher(x)).argmax(-1), 4).astype("float32")
    models, losses = {}, {}
    for kind, alpha in (("plain", None), ("alpha=0", 0.0), ("alpha=0.5", 0.5)):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((8,))
        hidden = keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
        outputs = keras.layers.Dense(4, activation="softmax")(hidden)
        model = (keras.Model(inputs, outputs) if alpha is None else
                 distill.Distiller(inputs, outputs, teacher=distill.Teacher(teacher, "t"), temperature=4.0,
                                   alpha=alpha))
        model.compile(keras.optimizers.Adam(0.02), loss=make_loss("softmax", 0.1))
        before = _kl(teacher, model, x)
        losses[kind] = _fit(model, x, y, epochs=6)
        models[kind] = model
    return models, losses, {kind: _kl(teacher, model, x) for kind, model in models.items()}, before


def _fit(model, x, y, epochs=2):
    return model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0).history["loss"]


def _kl(teacher, student, x):
    t, s = np.asarray(teacher(x)), np.asarray(student(x))
    return float(np.mean((t * np.log(t / np.maximum(s, 1e-12))).sum(-1)))


def test_alpha_zero_trains_exactly_as_without_a_teacher(students):
    models, losses, _, _ = students
    assert losses["plain"] == losses["alpha=0"]
    for a, b in zip(models["plain"].get_weights(), models["alpha=0"].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert losses["alpha=0.5"] != losses["plain"]  # the same comparison can fail


def test_a_distilled_student_moves_towards_its_teacher(students):
    # Both learn the teacher's own labels; only the distilled one also learns how sure it is.
    _, _, kl, before = students
    assert kl["alpha=0.5"] < 0.5 * kl["plain"] and kl["alpha=0.5"] < 0.2 * before, (before, kl)


def _teacher_run(folder, *, input_shape=(16, 16, 1), class_names=DIGITS, output="softmax", finished=True):
    """A finished run directory whose model is a random softmax layer on 16x16 images (the
    student's 28x28 digits are resized to them in the step)."""
    run = RunDir(folder)
    folder.mkdir()
    run.write_config(TrainConfig(model="sigmoid_mlp_30x1", data="mnist-sample", output=output))
    if finished:
        run.save_model(_teacher_model(input_shape, 10, scale=1 / 255))
        run.write_class_names(class_names)
        run.write_metrics({"accuracy": 0.1})
    return str(folder)


def _config(teacher, **changes):
    return TrainConfig(model="sigmoid_mlp_30x1", data="mnist-sample", teacher=teacher, epochs=2,
                       steps_per_epoch=3, batch_size=16, validation_split=0.02, deterministic=True,
                       tensorboard=False, jit_compile=False, export=False, verbose=0, **changes)


class _Killed(Exception):
    pass


class _Record(keras.callbacks.Callback):
    """Records what `fit` trains; `kill` stops the run once epoch 1's backup is written."""

    def __init__(self, kill=False):
        super().__init__()
        self.kill, self.models = kill, []

    def on_epoch_end(self, epoch, logs=None):
        self.models.append(self.model)
        if self.kill:
            raise _Killed


@pytest.fixture(scope="module")
def distilled_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    teacher = _teacher_run(root / "teacher")
    with pytest.MonkeyPatch.context() as patch:  # the plots take longer than the training here
        patch.setattr(report, "plot_run", lambda *args, **kwargs: None)
        first, killed, resumed = _Record(), _Record(kill=True), _Record()
        whole = train(_config(teacher), str(root / "whole"), callbacks=[first])
        with pytest.raises(_Killed):
            train(_config(teacher), str(root / "resumed"), callbacks=[killed])
        again = train(_config(teacher), str(root / "resumed"), resume=True, callbacks=[resumed])
    return whole, again, [first, killed, resumed]


def test_a_killed_distilled_run_resumes_to_the_uninterrupted_weights(distilled_runs):
    whole, again, records = distilled_runs
    # Every fit trained a Distiller, the teacher reloaded from its run directory on resume and
    # resized to for (the teacher takes 16x16, the student 28x28).
    for record in records:
        assert record.models and all(isinstance(m, distill.Distiller) for m in record.models)
        assert all(m.teacher.image_size == (16, 16) for m in record.models)
    assert len(whole.history) == 2 and whole.history.equals(again.history)
    for a, b in zip(whole.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def _layer_arrays(path):
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return {name for name in names if name.startswith("layers/")}, names


def test_the_saved_student_holds_no_teacher(distilled_runs, tmp_path):
    whole, _, _ = distilled_runs
    run = RunDir(whole.run_dir)
    saved = load_keras(run.file(RunDir.MODEL))
    assert not isinstance(saved, distill.Distiller) and not isinstance(whole.model, distill.Distiller)
    assert "teacher_classifier" not in {layer.name for layer in saved.layers}
    student = keras.Model(saved.inputs, saved.outputs)
    student.save_weights(tmp_path / "student.weights.h5")
    expected, _ = _layer_arrays(tmp_path / "student.weights.h5")
    for path in (run.file(RunDir.BEST), run.file(RunDir.PHASES, "train.weights.h5")):
        layers, everything = _layer_arrays(path)
        assert layers == expected and not [name for name in everything if "teacher" in name], path
    images = np.random.default_rng(1).integers(0, 256, (8, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(saved.predict(images, verbose=0), whole.model.predict(images, verbose=0))


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("unfinished", "not a complete training run: missing model.keras"),
    ("classes", "trained on the classes ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], but the data's are "
                "['0', '1'"),
    ("channels", "takes 3-channel images, the data's have 1"),
    ("sigmoid teacher", "has output='sigmoid'"),
])
def test_a_teacher_that_cannot_teach_is_refused_in_one_line(case, message, tmp_path):
    folder = tmp_path / "teacher"
    if case != "missing":
        _teacher_run(folder, finished=case != "unfinished", class_names=list("abcdefghij") if case == "classes"
                     else DIGITS, input_shape=(16, 16, 3) if case == "channels" else (16, 16, 1),
                     output="sigmoid" if case == "sigmoid teacher" else "softmax")
    with pytest.raises(ConfigError) as err:
        distill.load_teacher(str(folder), DIGITS, (28, 28, 1))
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_refusals_come_before_training(tmp_path):
    with pytest.raises(ConfigError, match="teacher= distils softmax outputs"):
        _config(str(tmp_path), output="sigmoid").validate()
    with pytest.raises(ConfigError, match="does not exist"):
        train(_config(str(tmp_path / "nowhere")), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # a failed start leaves nothing behind


def test_device_augmentation_and_a_teacher_combine(tmp_path):
    from tfresnet.training import augment as device_augment

    config = TrainConfig(teacher=_teacher_run(tmp_path / "teacher"), augment="mnist-shift", augment_on="model")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    student = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    model = distill.with_teacher(device_augment.with_augmentation(student, config.augment, seed=0), config, DIGITS)
    assert isinstance(model, distill.Distiller) and isinstance(model, device_augment.DeviceAugmented)
    model.compile("adam", loss=make_loss("softmax"), run_eagerly=True)
    images = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(32) % 10, 10)
    assert np.isfinite(_fit(model, images, labels, epochs=1)).all()
    plain = distill.inference_model(model)
    assert not isinstance(plain, (distill.Distiller, device_augment.DeviceAugmented))
