"""One training session: config -> data -> model -> compile -> callbacks -> fit -> evaluate -> save.

The trainer (`tfresnet.training.trainer.train`), the tuner's `ConfigHyperModel` and the benchmarks
all train through a `Session`, so a change to how tfresnet trains is made here once:

- `Session.open(config)` loads the data bundle and feeds it as Keras takes it (one-hot labels,
  training capped at `steps_per_epoch` batches, evaluation capped in smoke runs, sharded under a
  tf.distribute strategy);
- `build()` makes the registry model with its regularisation and input scaling inside, checks the
  fine-tuning layer, and freezes the backbone for phase 1 where the config asks;
- `compile(model, epochs=, peak=)` sets the optimizer, schedule, loss and metrics;
- `fit_phase(...)` runs one phase's `fit` with the run directory's callbacks and resume state;
- `evaluate(model)` and `save(...)` write the run's figures and files.

The smoke sizes, the precision policy and which config fields decide the data are facts kept
here and in `TrainConfig`, nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from typing import Any

import keras

from tfresnet import keras_compat
from tfresnet.console import progress_verbose
from tfresnet.models.common import iter_layers
from tfresnet.models.layers import TunedConv2D
from tfresnet.models.registry import create_model, get_model_spec
from tfresnet.models.transfer import fetch_imagenet_weights
from tfresnet.runs import RunDir
from tfresnet.training import augment as device_augment
from tfresnet.training import averaging, distill, finetune, multiworker, phases, precise_bn, report
from tfresnet.training.callbacks import AtomicBackupAndRestore, AtomicModelCheckpoint, EpochClock, make_callbacks
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.determinism import EpochSync
from tfresnet.training.layer_rates import layer_rates
from tfresnet.training.losses import make_loss, make_metrics
from tfresnet.training.optimizers import OPTIMIZERS, learning_rate, make_optimizer  # noqa: F401 (importable here too)

__all__ = ["Session", "Phase", "RunResult", "SMOKE_BATCHES", "smoke_config", "load_data", "build_model",
           "compile_model", "one_hot_labels", "steps_per_epoch_of", "precision_policy", "strategy_scope",
           "check_strategy_backend", "probe_batch"]

SMOKE_BATCHES = 3  # batches per split and epoch in a smoke run (training, validation and test)


def _family(model_name: str) -> str | None:
    """The registry family of a model name, which says how its layers form blocks (`layer_rates`)."""
    try:
        return get_model_spec(model_name).family
    except ValueError:
        return None


def smoke_config(config: TrainConfig) -> TrainConfig:
    """Shrinks a config to seconds: one short epoch per phase, small batches and images."""
    if not config.smoke:
        return config
    return dataclasses.replace(
        config,
        epochs=1,
        fine_tune_epochs=min(config.fine_tune_epochs, 1),
        batch_size=min(config.batch_size, 16),
        steps_per_epoch=min(config.steps_per_epoch or SMOKE_BATCHES, SMOKE_BATCHES),
        precise_bn=min(config.precise_bn, SMOKE_BATCHES),
        image_size=None if config.image_size is None else min(config.image_size, 64),
        warmup_epochs=0.0,
        step_epochs=[],
        schedule="constant" if config.schedule == "step" else config.schedule,
        tensorboard=False,
        jit_compile=False,  # XLA compiles for longer than a smoke run trains
        verbose=0,
    )


def load_data(config: TrainConfig):
    """The dataset bundle a config asks for (train/validation/test batches and class names).

    Raises:
        ConfigError: when a class has no usable training image (unless the config's
            `drop_empty_classes` drops it), naming the class and why its files were skipped.
    """
    from tfresnet import data as data_lib

    try:
        args = config.data_load_args()
        if config.augment_on == "model":  # the train step augments (tfresnet.training.augment)
            args["augment"] = "none"
        return data_lib.load(config.data, **args)
    except data_lib.EmptyClassError as err:
        raise ConfigError(str(err)) from None


def build_model(config: TrainConfig, input_shape, num_classes: int) -> keras.Model:
    """Builds the registry model with the config's regularisation and input scaling inside it."""
    kwargs = dict(
        input_shape=tuple(input_shape), num_classes=num_classes, l2=config.l2,
        dropout=config.dropout, preprocessing="auto",
        classifier_activation=config.output,  # an output's name is its Keras activation's (losses.OUTPUTS)
        **config.model_args,
    )
    if config.drop_path:
        kwargs["drop_path"] = config.drop_path
    if config.weights is not None:
        kwargs["weights"] = config.weights
    model = create_model(config.model, **kwargs)
    if keras.mixed_precision.global_policy().compute_dtype != "float32":
        # Softmax outputs and the loss stay float32 under mixed precision.
        outputs = keras.layers.Activation("linear", dtype="float32", name="float32_output")(model.output)
        model = keras.Model(model.input, outputs, name=model.name)
    return model


def one_hot_labels(dataset, num_classes: int):
    """Labels as one-hot vectors, which label smoothing and MixUp/CutMix need."""
    import tensorflow as tf

    def encode(images, labels):
        if labels.shape.rank == 1:
            labels = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        return images, labels

    return dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE)


def _take(dataset, batches: int | None):
    # Not fit(steps_per_epoch=...): Keras (3.15 EpochIterator) then continues one iterator across
    # epochs, so epoch k would not read epoch k's shuffle (EpochSync), and a resumed run would
    # read other batches than an uninterrupted one. take() restarts the pass each epoch.
    return dataset if dataset is None or batches is None else dataset.take(batches)


def steps_per_epoch_of(data, config: TrainConfig) -> int:
    """Optimizer steps in one epoch of the bundle's training split, capped by `steps_per_epoch`."""
    # The pipeline yields exactly this many batches per pass (files that fail to decode at run
    # time are topped up from the next pass), so the schedule's steps and Keras' epochs agree.
    steps = math.ceil(data.num_examples["train"] / data.batch_size)
    return min(steps, config.steps_per_epoch) if config.steps_per_epoch else steps


def check_strategy_backend(config: TrainConfig) -> None:
    """A tf.distribute strategy needs the TensorFlow backend; fails before anything is made."""
    if config.strategy is not None and keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"strategy={config.strategy!r} is a tf.distribute strategy and needs "
            f"KERAS_BACKEND=tensorflow; the backend is {keras.backend.backend()!r}."
        )


def strategy_scope(config: TrainConfig):
    """The scope that building, compiling and fitting must all happen in (none without a strategy)."""
    if config.strategy is None:
        return contextlib.nullcontext()
    import tensorflow as tf  # the trainer checked the backend (`check_strategy_backend`)

    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy().scope()
    return multiworker.make_strategy().scope()  # reads TF_CONFIG


@contextlib.contextmanager
def precision_policy(config: TrainConfig):
    """Keras' global dtype policy set to the config's for the block, and restored after it.

    A model takes the policy at construction (and compile wraps a float16 model's optimizer in
    loss scaling), so building and compiling inside the block is enough; restoring it keeps one
    run's or trial's policy from leaking into the next.
    """
    previous = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _jit_compile(config: TrainConfig):
    """Resolves ``jit_compile="auto"``: XLA on GPUs only for TensorFlow.

    Measured on 2 CPU cores (ResNet-20, MNIST sample, 43 steps an epoch): XLA saved 2 s an
    epoch but took 27 s more to compile, so on CPUs it pays only for runs of 14+ epochs.
    """
    if config.jit_compile != "auto":
        return config.jit_compile
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return "auto"


def compile_model(model, config: TrainConfig, steps_per_epoch: int, *, epochs: int, peak: float) -> None:
    """Compiles with the config's optimizer, schedule (over `epochs`, peaking at `peak`) and loss.

    With ``layer_decay`` or ``lr_mult``, each variable's rate is its own (`layer_rates`), and a
    line says the rates per block.

    Raises:
        ConfigError: when an ``lr_mult`` prefix matches no layer of `model`.
    """
    lr = learning_rate(config, steps_per_epoch, epochs=epochs, peak=peak)  # in updates (`accumulate`)
    rates = layer_rates(distill.inference_model(model), config, _family(config.model))
    if rates is not None and config.verbose:
        print(rates.summary(), flush=True)
    model.compile(
        optimizer=make_optimizer(config, lr, rate_multipliers=rates and rates.multipliers),
        loss=make_loss(config.output, config.label_smoothing),
        metrics=make_metrics(),
        # Not XLA when the train step warps images with ops it lacks (`device_augment.allows_jit`).
        jit_compile=_jit_compile(config) if device_augment.allows_jit(model) else False,
        steps_per_execution=config.steps_per_execution,
    )
    # Without a tf.distribute strategy, Keras (3.15) builds the optimizer inside the first
    # trace of the train step; the variables it creates there make TensorFlow trace the whole
    # step a second time. Built here (in the caller's strategy scope), the step is traced once:
    # a whole 6-step ResNet-20 run at 64 px took 13.4 s instead of 16.4 (medians of 3, 2 cores).
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for layer in iter_layers(model):  # read at the train step's trace
        if isinstance(layer, TunedConv2D):
            layer.weight_grad = config.pointwise_weight_grad


@dataclasses.dataclass(frozen=True)
class Phase:
    """One `fit` call of a run: ``train`` (phase 1) or ``finetune`` (phase 2 of transfer learning)."""

    name: str
    epochs: int
    lr: float


@dataclasses.dataclass
class Session:
    """A config's data, fed as Keras takes it, and the steps that train a model on it.

    Attributes:
        config: the smoke-shrunk, validated config.
        data: the `tfresnet.data` bundle (class names, shapes, counts, skipped files).
        train: training batches with one-hot labels, capped at the config's `steps_per_epoch`.
        validation: validation batches (capped in smoke runs), or None.
        test: the split the run reports: test, else validation (capped in smoke runs), or None.
        test_split: ``"test"`` or ``"validation"``.
        steps_per_epoch: optimizer steps in one epoch.
    """

    config: TrainConfig
    data: Any
    train: Any
    validation: Any
    test: Any
    test_split: str
    steps_per_epoch: int

    @classmethod
    def open(cls, config: TrainConfig, *, data_loader=None) -> Session:
        """Loads `config`'s data (`data_loader(config)`, default `load_data`) and prepares its splits."""
        if config.weights == "imagenet":
            fetch_imagenet_weights(config.model, config.model_args, image_size=config.image_size)
        bundle = (data_loader or load_data)(config)
        eval_limit = SMOKE_BATCHES if config.smoke else None

        def feed(split, limit):
            return None if split is None else _take(one_hot_labels(split, bundle.num_classes), limit)

        train, validation = feed(bundle.train, config.steps_per_epoch), feed(bundle.validation, eval_limit)
        if config.strategy is not None:  # each global batch split between the replicas
            train, validation = multiworker.shard_by_data(train), multiworker.shard_by_data(validation)
        # The report's split is never sharded: the chief evaluates it alone.
        test_split = "test" if bundle.test is not None else "validation"
        test = _take(bundle.test if bundle.test is not None else bundle.validation, eval_limit)
        return cls(config, bundle, train, validation, test, test_split, steps_per_epoch_of(bundle, config))

    def phases(self) -> list[Phase]:
        """``train``, then ``finetune`` where the config fine-tunes."""
        config = self.config
        run = [Phase("train", config.epochs, config.lr)]
        if config.fine_tune_epochs:
            run.append(Phase("finetune", config.fine_tune_epochs, config.fine_tune_lr))
        return run

    def build(self) -> keras.Model:
        """The registry model, frozen for phase 1 where the config freezes the backbone.

        With ``augment_on="model"``, a `tfresnet.training.augment.DeviceAugmented` over it; with a
        ``teacher``, a `tfresnet.training.distill.Distiller` (its teacher loaded again on resume).

        Raises:
            ConfigError: when the fine-tuning layer is not one of the model's, the backend
                cannot augment in the train step, or the teacher cannot teach this data
                (`distill.load_teacher`), before any training.
        """
        config, data = self.config, self.data
        model = build_model(config, data.input_shape, data.num_classes)
        first = config.fine_tune_layer()
        if config.fine_tune_epochs and first is not None and first not in {layer.name for layer in model.layers}:
            raise ConfigError(
                f"fine_tune_from={first!r} is not a layer of {config.model!r}; see "
                f"`[l.name for l in tfresnet.create_model({config.model!r}).layers]`."
            )
        if config.freeze_backbone:
            # The data's shape wins over a model_args one, as the model was built with it.
            head = finetune.head_layer_names(model, config.model,
                                             **{**config.model_args, "input_shape": tuple(data.input_shape)})
            finetune.freeze_backbone(model, head)
        if config.augment_on == "model":
            # The same graph and layers (freezing by name and weight files work unchanged), with
            # the augmentation in its train step; `save` writes the model without it.
            try:
                device_augment.check_backend(config.augment_on)
            except ValueError as err:
                raise ConfigError(str(err)) from None
            model = device_augment.with_augmentation(model, config.augment, seed=config.seed)
        if config.teacher is not None:  # the teacher's soft labels in the loss; `save` writes the student alone
            model = distill.with_teacher(model, config, data.class_names)
        return model

    def enter(self, model, phase: Phase) -> None:
        """Sets which layers train in `phase` (phase 2 unfreezes the top of the backbone)."""
        if phase.name == "finetune":
            finetune.unfreeze_from(model, self.config.fine_tune_layer())

    def compile(self, model, *, epochs: int | None = None, peak: float | None = None) -> None:
        """`compile_model` with a schedule over `epochs` (default the config's) peaking at `peak`."""
        config = self.config
        compile_model(model, config, self.steps_per_epoch, epochs=config.epochs if epochs is None else epochs,
                      peak=config.lr if peak is None else peak)

    def fit_phase(self, model, phase: Phase, run_dir: str, *, next_epoch: int, best_so_far,
                  clock: EpochClock, extra_callbacks=()) -> tuple[int, Any]:
        """Compiles and trains one phase with the run directory's callbacks; resumes from its backup.

        Returns:
            ``(next_epoch, best_so_far)`` after the phase; `clock` holds the time so far.
        """
        config = self.config
        self.compile(model, epochs=phase.epochs, peak=phase.lr)
        callbacks = make_callbacks(config, run_dir, phase=phase.name, has_validation=self.validation is not None,
                                   best_so_far=best_so_far, clock=clock, probe=lambda: probe_batch(config))
        backup = next(c for c in callbacks if isinstance(c, AtomicBackupAndRestore))
        callbacks = self._weight_callbacks(model, callbacks, run_dir, backup=backup)
        with (keras_compat.multiworker_fit(model, self.train) if config.strategy == "multiworker"
              else contextlib.nullcontext()):
            fit = model.fit(
                self.train,
                validation_data=self.validation,
                initial_epoch=next_epoch,  # the phase's backup, if any, moves it on
                epochs=next_epoch + phase.epochs,
                callbacks=[*callbacks, *extra_callbacks, EpochSync(self.data)],
                verbose=progress_verbose(config.verbose),  # no animated bar (ANSI codes) in a log file
                shuffle=False,  # the tf.data pipeline shuffles; fit cannot shuffle a Dataset
            )
        # A resumed phase with nothing left to run (killed after its last backup, or stopped
        # early) ends at its backup's epoch.
        next_epoch = fit.epoch[-1] + 1 if fit.epoch else (backup.restored_epoch or next_epoch)
        best_so_far = backup.checkpoint_best()
        phases.save_finished(model, run_dir, phase.name, next_epoch=next_epoch, checkpoint_best=best_so_far,
                             clock=clock.get_state())
        return next_epoch, best_so_far

    def _weight_callbacks(self, model, callbacks: list, run_dir: str, *, backup) -> list:
        """`callbacks` with precise batch norm before each validation where asked, then the
        `ema_weights` choice (`averaging.with_weight_choice`): the re-estimate sees the set validated."""
        checkpoint = first = next(c for c in callbacks if isinstance(c, AtomicModelCheckpoint))
        if self.config.precise_bn_each_epoch and self.validation is not None:
            first = precise_bn.PreciseBN(self.statistics_batches, model=distill.inference_model(model))
            callbacks.insert(callbacks.index(checkpoint), first)
        return averaging.with_weight_choice(callbacks, self.config, run_dir, first_monitor=first,
                                            checkpoint=checkpoint, backup=backup, saved=distill.inference_model)

    @functools.cached_property
    def statistics_batches(self) -> precise_bn.TrainingBatches:
        """What precise batch norm estimates on: the training split unaugmented, a pipeline of its own."""
        own = dataclasses.replace(self.config, augment="none", augment_on="data", cache=False,
                                  data_args={**self.config.data_args, "verbose": 0})
        return precise_bn.TrainingBatches(lambda: load_data(own), self.config.precise_bn)

    def fit_all(self, model, run_dir: str, *, extra_callbacks=()) -> tuple[int, EpochClock]:
        """Runs every phase not finished in `run_dir`; returns ``(epochs_run, clock)``.

        The clock adds up every epoch's seconds and examples, those of earlier attempts included.
        """
        # Where the next phase starts, the monitor's best so far and the clock, carried from
        # phase to phase (from the phase files when a resumed run skips finished phases). Not
        # from the history: after a kill in phase 2 it already holds phase 2's rows.
        next_epoch, best_so_far = 0, None
        clock = EpochClock(self.steps_per_epoch * self.config.batch_size)
        for phase in self.phases():
            self.enter(model, phase)
            finished = phases.load_finished(model, run_dir, phase.name)
            if finished is not None:  # finished before a restart
                next_epoch = finished.get("next_epoch", next_epoch + phase.epochs)
                best_so_far = finished.get("checkpoint_best", best_so_far)
                clock.set_state(finished.get("clock") or {})
                continue
            next_epoch, best_so_far = self.fit_phase(model, phase, run_dir, next_epoch=next_epoch,
                                                     best_so_far=best_so_far, clock=clock,
                                                     extra_callbacks=extra_callbacks)
        return next_epoch, clock

    def evaluate(self, model) -> dict:
        """The report's figures on the test split (`report.evaluate`), with what was evaluated."""
        config = self.config
        metrics = {"split": self.test_split, "model": config.model, "data": config.data}
        if self.test is not None:
            metrics.update(report.evaluate(model, self.test, self.data.num_classes))
        return metrics

    def run(self, run: RunDir, *, recipe: str = "run", extra_callbacks=()) -> RunResult:
        """Trains every phase not finished in `run`, evaluates, and saves the run's files.

        The one place a run's training, evaluation and saving happen, in that order: the
        trainer only prepares and locks the directory around it.
        """
        self.data.write_report(run.file(RunDir.DATA_REPORT))  # prints what was skipped
        model = self.build()
        report.repair_history(run.file(RunDir.HISTORY))
        epochs_run, clock = self.fit_all(model, run.path, extra_callbacks=extra_callbacks)
        # Rows past the end are left by an attempt that a restarted phase did not repeat.
        history = report.deduplicate_history(run.file(RunDir.HISTORY), end=epochs_run)
        with contextlib.suppress(OSError):  # each phase's backup is gone once it finished
            os.rmdir(run.file(RunDir.BACKUP))
        if os.path.exists(run.file(RunDir.BEST)) and not self.config.early_stopping:
            # EarlyStopping already restored its best; otherwise the checkpoint holds the best epoch.
            model.load_weights(run.file(RunDir.BEST))
        refined = precise_bn.refine_run(distill.inference_model(model), run.path, self.config,
                                        self.statistics_batches, epoch=epochs_run)
        metrics = self.evaluate(model)
        metrics.update(recipe=recipe, epochs_run=epochs_run, train_seconds=round(clock.seconds, 2),
                       examples_per_second=round(clock.examples / clock.seconds, 1) if clock.seconds else None,
                       class_names=list(self.data.class_names), **refined)
        self.save(model, run, history, metrics)
        return RunResult(run_dir=run.path, metrics={k: v for k, v in metrics.items() if k != "misclassified"},
                         history=history, model=distill.inference_model(model),
                         class_names=list(self.data.class_names))

    def save(self, model, run: RunDir, history, metrics: dict) -> None:
        """Writes ``model.keras``, ``class_names.json``, the plots and, last, ``metrics.json``.

        `metrics.json` comes last: a run holding it is finished (`RunDir.is_finished`).
        """
        run.save_model(distill.inference_model(model))  # no train-step augmentation, no teacher
        run.write_class_names(self.data.class_names)
        if "accuracy" in metrics:
            report.plot_run(run.path, history, metrics, list(self.data.class_names))
        run.write_metrics(metrics)


@dataclasses.dataclass
class RunResult:
    """What a run returns: where its files are, its figures, history and model."""

    run_dir: str
    metrics: dict
    history: Any
    model: keras.Model
    class_names: list
    finished_before: bool = False  # read back from a run that had finished: nothing was written

    @classmethod
    def of_finished(cls, run: RunDir) -> RunResult:
        """The result a finished run directory holds, read back without writing anything."""
        return cls(run_dir=run.path, metrics=run.metrics, history=run.history(),
                   model=run.load_model(), class_names=run.class_names, finished_before=True)


def probe_batch(config: TrainConfig):
    """The first `batch_size` images and labels of a config's training split, in stored order.

    Unshuffled and unaugmented, so every run of the same data and seed measures on the same
    images. Read through a pipeline of its own: taking a batch from the run's training dataset
    would advance its shuffle seed and so change the order the run trains in (measured: the
    first epoch's batches differ).
    """
    own = dataclasses.replace(config, augment="none", cache=False,
                              data_args={**config.data_args, "shuffle": False})
    images, labels = next(iter(load_data(own).train))
    return images.numpy(), labels.numpy()
