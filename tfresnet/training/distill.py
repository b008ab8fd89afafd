"""Knowledge distillation (`TrainConfig.teacher`): the student also learns a finished run's soft labels.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (2015): the teacher's
class probabilities, softened at a temperature T, carry what it learned about which classes look
alike; the student is trained on them as well as on the labels. keras.io's "Knowledge
Distillation" example is the anchor. In training the loss is::

    (1 - alpha) * the run's own loss (labels, label smoothing, MixUp's mixed labels)
    + alpha * T^2 * KL(teacher_T || student_T)
    + the regularisation losses (L2), unweighted

with ``alpha = distill_alpha`` and ``T = distill_temperature``; T^2 keeps the soft term's gradient
on the scale of the labels' as T changes (the paper's section 2). tfresnet's classifiers end in a
softmax, so both models give probabilities, not logits: softening takes their logarithms (the
logits up to a constant, which the softmax ignores), divides by T and renormalises
(`soft_log_probabilities`). ``output="sigmoid"`` has no distribution to soften and is refused.

How it is built, like `tfresnet.training.augment.DeviceAugmented`: a `Distiller` is the student's
own functional graph (the same layers, names and weights) whose `compute_loss` adds the
teacher's term in training. So:

- the teacher is held in a plain `Teacher` record, not a Keras attribute: its weights are not the
  model's, the optimizer never sees them (frozen), and no checkpoint, backup or phase file holds
  them; a resumed run loads the teacher again from its run directory;
- validation and every evaluation score the student alone on the labels (``val_loss`` is its own
  loss; the training ``loss`` column is the blended objective above);
- `inference_model` (what `Session.save` writes as ``model.keras``, and so every export and
  `predict`) is the plain student.

A teacher whose input size differs from the student's gets each batch resized to its own size
inside the step (bilinear, `keras.ops.image.resize`); a different number of channels is refused.
`keras.ops` only: it runs on JAX too, where the teacher's weights are constants of the step.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from tfresnet.runs import RunDir
from tfresnet.training import augment as device_augment
from tfresnet.training.config import ConfigError

__all__ = ["PROBABILITY_FLOOR", "soft_log_probabilities", "DistillationLoss", "Teacher", "Distiller",
           "load_teacher", "with_teacher", "inference_model"]

# Probabilities are floored here before their logarithm: a float32 softmax rounds a class far
# below the top to 0, whose log is -inf (and whose gradient is NaN). Keras' own cross-entropies
# floor at 1e-7; lower here because at T=4 a class at 1e-9 still carries a visible soft weight.
PROBABILITY_FLOOR = 1e-12


def soft_log_probabilities(probabilities, temperature: float):
    """Log of a softmax output softened at `temperature`: ``log_softmax(log(p) / T)``.

    Args:
        probabilities: a softmax head's outputs, ``(batch, classes)``.
        temperature: T; 1 gives the probabilities back (as logs), larger flattens them.
    """
    logits = ops.log(ops.maximum(ops.cast(probabilities, "float32"), PROBABILITY_FLOOR))
    return ops.log_softmax(logits / temperature, axis=-1)


class DistillationLoss(keras.losses.Loss):
    """``T^2 * KL(teacher_T || student_T)`` per example, from the two models' probabilities.

    A Keras loss, so sample weights, the batch reduction and a distribution strategy's scaling
    are those of the run's own loss. ``y_true`` is the teacher's output, ``y_pred`` the student's.

    Args:
        temperature: T, the softening temperature.
    """

    def __init__(self, temperature: float, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        teacher = soft_log_probabilities(y_true, self.temperature)
        student = soft_log_probabilities(y_pred, self.temperature)
        kl = ops.sum(ops.exp(teacher) * (teacher - student), axis=-1)
        return self.temperature**2 * kl

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature}


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A finished run's model, frozen, as the distiller calls it.

    A plain record on purpose: Keras tracks (and saves, and trains) a model held as an attribute
    of another, and this one must be none of those.

    Attributes:
        model: the teacher's model (``model.keras`` of its run, loaded in safe mode).
        run_dir: where it came from.
        image_size: ``(height, width)`` the student's images are resized to for it, or None
            where its input size is the student's.
    """

    model: keras.Model
    run_dir: str
    image_size: tuple[int, int] | None = None

    def __call__(self, images):
        """The teacher's probabilities (float32, no gradient) for a batch of the student's images."""
        if self.image_size is not None:
            images = ops.image.resize(images, self.image_size)
        return ops.stop_gradient(ops.cast(self.model(images, training=False), "float32"))


class Distiller(keras.Model):
    """A student's graph whose training loss adds a teacher's soft labels (see the module docstring).

    Build it as a functional model: ``Distiller(student.inputs, student.outputs, teacher=...,
    temperature=4.0, alpha=0.5, name=student.name)``.

    Args:
        teacher: a `Teacher`.
        temperature: T, the softening temperature (> 0).
        alpha: the soft term's weight, in [0, 1]; the labels get ``1 - alpha``.
    """

    def __init__(self, *args, teacher: Teacher, temperature: float = 4.0, alpha: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The run's loss; in training, `alpha` of the labels' share moved to the teacher's soft labels."""
        total = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        if not training:  # validation and evaluation score the student on the labels alone
            return total
        labels = keras.losses.get(self.loss)(y, y_pred, sample_weight)
        soft = DistillationLoss(self.temperature)(self.teacher(x), y_pred, sample_weight)
        # (1 - alpha) * labels + alpha * soft + regularisation, written as a correction of the run's
        # own loss so that alpha=0 trains exactly as without a teacher (tests/training/test_distill.py).
        return total + self.alpha * (soft - labels)

    def inference_model(self) -> keras.Model:
        """The plain student: a functional model over the same layers and weights, no teacher."""
        return keras.Model(self.inputs, self.outputs, name=self.name)


class _AugmentedDistiller(Distiller, device_augment.DeviceAugmented):
    """Both at once (``augment_on="model"`` with a teacher): the train step augments the batch,
    then the loss adds the teacher's term on the augmented images.

    Distiller first: Keras rebases a functional subclass onto `Functional` when its first instance
    is made, and a `DeviceAugmented` always exists before this class's first instance
    (`with_teacher` wraps one); in this order every ``__init__`` still runs in either state.
    """


def load_teacher(run_dir: str, class_names, input_shape) -> Teacher:
    """The teacher of a run: a finished run directory's model, checked against the student's data.

    Args:
        run_dir: the teacher's run directory (`TrainConfig.teacher`).
        class_names: the student's data's class names, in output order.
        input_shape: the student's input ``(height, width, channels)``.

    Raises:
        ConfigError: one line, when the directory is missing or not a finished run, its model has
            sigmoid outputs, its classes are not the data's (in the same order), or its input has
            other channels than the student's.
    """
    run = RunDir(run_dir)
    try:
        run.require_finished()
        if not run.is_finished():
            raise FileNotFoundError(f"{run_dir} is not a finished run: it holds no {RunDir.METRICS}")
    except FileNotFoundError as err:
        raise ConfigError(f"teacher: {str(err).rstrip('.')}. Give teacher= the directory of a finished "
                          "training run.") from None
    if run.config.output != "softmax":
        raise ConfigError(f"teacher: {run_dir} has output={run.config.output!r}; distillation softens "
                          f"softmax outputs (a distribution over the classes). Received teacher={run_dir!r}")
    names, expected = run.class_names, [str(name) for name in class_names]
    if names != expected:
        raise ConfigError(f"teacher: {run_dir} was trained on the classes {names}, but the data's are {expected}; "
                          "a teacher must give the student's classes, in the same order.")
    model = run.load_model()  # safe mode (tfresnet.runs.load_keras)
    model.trainable = False
    *size, channels = tuple(model.input_shape[1:])
    *student_size, student_channels = tuple(input_shape)
    if channels != student_channels:
        raise ConfigError(f"teacher: {run_dir}'s model takes {channels}-channel images, the data's have "
                          f"{student_channels}. Received teacher input_shape={tuple(model.input_shape[1:])}")
    resize = None if None in size or list(size) == list(student_size) else tuple(size)
    return Teacher(model, run_dir, resize)


def with_teacher(model: keras.Model, config, class_names) -> keras.Model:
    """`model` (plain or `DeviceAugmented`) as a `Distiller` learning from `config.teacher`.

    Args:
        model: the student, as `Session.build` made it.
        config: the run's `TrainConfig` (teacher, distill_temperature, distill_alpha, seed).
        class_names: the data's class names.

    Raises:
        ConfigError: from `load_teacher`, before any training.
    """
    teacher = load_teacher(config.teacher, class_names, model.input_shape[1:])
    kwargs = dict(teacher=teacher, temperature=config.distill_temperature, alpha=config.distill_alpha,
                  name=model.name)
    if isinstance(model, device_augment.DeviceAugmented):  # the same graph and augmentation (same seed)
        return _AugmentedDistiller(model.inputs, model.outputs, augmentation=model.augmentation,
                                   seed=config.seed, **kwargs)
    return Distiller(model.inputs, model.outputs, **kwargs)


def inference_model(model: keras.Model) -> keras.Model:
    """The model to save, export and serve: `model` without its teacher or train-step augmentation."""
    if isinstance(model, Distiller):
        return model.inference_model()
    return device_augment.inference_model(model)
