"""The one trainer every recipe runs: `model.fit` with the run directory around it.

A run directory holds the resolved `config.json`, `history.csv`, `metrics.json`, plots,
TensorBoard logs, `checkpoints/best.weights.h5`, the final `model.keras` (which takes raw 0-255
pixels: its input scaling is a layer inside it) and `class_names.json`. A run killed at any point,
kill -9 included, continues from its last epoch backup with `train(..., resume=True)`.

Training is in phases, each one `fit` call: ``train`` (the whole model, or only the new head when
`freeze_backbone` is set) and, for transfer learning, ``finetune`` (the top of the backbone at a
lower rate, after recompiling). A finished phase leaves its weights in `phases/`, so a resumed run
skips it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time

import keras
import pandas as pd

from tfresnet import keras_compat
from tfresnet.console import progress_verbose
from tfresnet.models.registry import create_model
from tfresnet.training import finetune, multiworker, phases, report, rundir
from tfresnet.training.callbacks import AtomicBackupAndRestore, make_callbacks
from tfresnet.training.config import ConfigError, TrainConfig
from tfresnet.training.determinism import EpochSync, seed_everything
from tfresnet.training.schedules import make_schedule

__all__ = ["RunResult", "train", "build_model", "load_data", "compile_model", "one_hot_labels",
           "steps_per_epoch_of", "smoke_config", "prepare_run_dir"]

# An optimizer per name; `lr` is a float or a schedule.
OPTIMIZERS = {
    "sgd": lambda c, lr: keras.optimizers.SGD(lr, momentum=c.momentum, nesterov=True,
                                              weight_decay=c.weight_decay or None),
    "adam": lambda c, lr: keras.optimizers.Adam(lr, weight_decay=c.weight_decay or None),
    "adamw": lambda c, lr: keras.optimizers.AdamW(lr, weight_decay=c.weight_decay),
    "rmsprop": lambda c, lr: keras.optimizers.RMSprop(lr, momentum=c.momentum,
                                                      weight_decay=c.weight_decay or None),
}

_SMOKE_BATCHES = 3  # batches per split and epoch in a smoke run


@dataclasses.dataclass
class RunResult:
    """What `train` returns: where the outputs are and the test figures."""

    run_dir: str
    metrics: dict
    history: pd.DataFrame
    model: keras.Model
    class_names: list


def smoke_config(config: TrainConfig) -> TrainConfig:
    """Shrinks a config to seconds: one short epoch per phase, small batches and images."""
    if not config.smoke:
        return config
    return dataclasses.replace(
        config,
        epochs=1,
        fine_tune_epochs=min(config.fine_tune_epochs, 1),
        batch_size=min(config.batch_size, 16),
        steps_per_epoch=min(config.steps_per_epoch or _SMOKE_BATCHES, _SMOKE_BATCHES),
        image_size=None if config.image_size is None else min(config.image_size, 64),
        warmup_epochs=0.0,
        step_epochs=[],
        schedule="constant" if config.schedule == "step" else config.schedule,
        tensorboard=False,
        jit_compile=False,  # XLA compiles for longer than a smoke run trains
        verbose=0,
    )


def prepare_run_dir(run_dir: str | None, recipe: str, *, resume: bool) -> str:
    """Creates the run directory; refuses to overwrite a run that finished an epoch.

    A run that failed before finishing one (its config.json written, no history row, backup or
    phase file) is started again from scratch: nothing in it is worth keeping, and refusing
    would block the directory for good, since ``--resume`` takes no ``--set`` to fix it.
    """
    if run_dir is None:
        run_dir = rundir.new_run_dir(recipe)  # unique even for two launches in one second
    configured = os.path.exists(os.path.join(run_dir, "config.json"))
    if resume and not configured:
        raise FileNotFoundError(f"Nothing to resume in {run_dir}: it has no config.json.")
    if configured and not resume:
        if rundir.has_progress(run_dir):
            raise FileExistsError(
                f"{run_dir} already holds a run. Resume it with --resume {run_dir}, or choose "
                f"another --run-dir."
            )
        with contextlib.suppress(FileNotFoundError):  # a header that may name other columns
            os.remove(os.path.join(run_dir, "history.csv"))
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def load_data(config: TrainConfig):
    """The dataset bundle a config asks for (train/validation/test batches and class names).

    Raises:
        ConfigError: when a class has no usable training image (unless the config's
            `drop_empty_classes` drops it), naming the class and why its files were skipped.
    """
    from tfresnet import data as data_lib

    try:
        return _load(data_lib, config)
    except data_lib.EmptyClassError as err:
        raise ConfigError(str(err)) from None


def _load(data_lib, config: TrainConfig):
    return data_lib.load(
        config.data,
        data_dir=config.data_dir,
        image_size=config.image_size,
        resize=config.resize_mode,
        batch_size=config.batch_size,
        validation_split=config.validation_split,
        seed=config.seed,
        augment=config.augment,
        cache="memory" if config.cache else None,
        verbose=0 if config.smoke else 1,
        drop_empty_classes=config.drop_empty_classes,
        deterministic=config.deterministic,
        **config.data_args,
    )


def build_model(config: TrainConfig, input_shape, num_classes: int) -> keras.Model:
    """Builds the registry model with the config's regularisation and input scaling inside it."""
    kwargs = dict(
        input_shape=tuple(input_shape), num_classes=num_classes, l2=config.l2,
        dropout=config.dropout, preprocessing="auto", **config.model_args,
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


def _limit(dataset, batches: int | None):
    return dataset if dataset is None or batches is None else dataset.take(batches)


def steps_per_epoch_of(data, config: TrainConfig) -> int:
    """Optimizer steps in one epoch of the bundle's training split, capped by `steps_per_epoch`."""
    # The pipeline yields exactly this many batches per pass (files that fail to decode at run
    # time are topped up from the next pass), so the schedule's steps and Keras' epochs agree.
    steps = math.ceil(data.num_examples["train"] / data.batch_size)
    return min(steps, config.steps_per_epoch) if config.steps_per_epoch else steps


def _check_strategy_backend(config: TrainConfig) -> None:
    if config.strategy is not None and keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"strategy={config.strategy!r} is a tf.distribute strategy and needs "
            f"KERAS_BACKEND=tensorflow; the backend is {keras.backend.backend()!r}."
        )


def _strategy(config: TrainConfig):
    if config.strategy is None:
        return contextlib.nullcontext()
    _check_strategy_backend(config)
    import tensorflow as tf

    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy().scope()
    return multiworker.make_strategy().scope()  # reads TF_CONFIG


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
    """Compiles with the config's optimizer, schedule (over `epochs`, peaking at `peak`) and loss."""
    # ReduceLROnPlateau needs a plain float to lower.
    lr = peak if config.reduce_lr_on_plateau else make_schedule(config, steps_per_epoch, epochs=epochs, peak=peak)
    model.compile(
        optimizer=OPTIMIZERS[config.optimizer](config, lr),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=_jit_compile(config),
        steps_per_execution=config.steps_per_execution,
    )


def _phases(config: TrainConfig) -> list[dict]:
    phases = [{"name": "train", "epochs": config.epochs, "lr": config.lr}]
    if config.fine_tune_epochs:
        phases.append({"name": "finetune", "epochs": config.fine_tune_epochs,
                       "lr": config.fine_tune_lr})
    return phases


def train(
    config: TrainConfig,
    run_dir: str | None = None,
    *,
    resume: bool = False,
    recipe: str = "run",
    callbacks: list | None = None,
) -> RunResult:
    """Trains, evaluates and saves one run.

    Args:
        config: the run's config; validated before anything is loaded or built.
        run_dir: output directory; default ``runs/<recipe>-<timestamp>``.
        resume: continue the run in `run_dir` from its last backup.
        recipe: the recipe's name, for the default run directory.
        callbacks: extra Keras callbacks for every phase's `fit`, after the config's own (e.g.
            a benchmark's probe; one that sets ``model.stop_training`` ends the phase).

    Returns:
        A `RunResult`.

    Raises:
        ConfigError: for a bad config, before training.
        NaNLossError: when the loss becomes NaN; the last epoch backup is kept for --resume.
    """
    config = smoke_config(config).validate()
    _check_strategy_backend(config)  # before a run directory is made
    if resume and not os.path.exists(os.path.join(run_dir or "", "config.json")):
        raise FileNotFoundError(f"Nothing to resume in {run_dir}: it has no config.json.")
    if run_dir is None and multiworker.writes_run_dir(config):
        run_dir = rundir.new_run_dir(recipe)  # unique even for two launches in one second
    # One writer per run directory: a second `train` (or `tune`) on it fails naming our pid.
    # A non-chief worker of a multi-worker run writes to a temporary folder instead.
    with multiworker.own_dir(config, run_dir, resume=resume) as own, rundir.lock_run_dir(own):
        run_dir = prepare_run_dir(own, recipe, resume=resume)
        rundir.write_atomic(os.path.join(run_dir, "config.json"), config.to_json())

        seed_everything(config.seed, deterministic=config.deterministic)
        previous_policy = keras.mixed_precision.global_policy()
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy(config.mixed_precision)
        try:
            # Building, compiling and fitting must all happen in the strategy's scope.
            with _strategy(config):
                return _train(config, run_dir, list(callbacks or []))
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)


def _train(config: TrainConfig, run_dir: str, extra_callbacks: list) -> RunResult:
    data = load_data(config)
    data.write_report(os.path.join(run_dir, "data_report.json"))  # prints what was skipped
    limit = config.steps_per_epoch
    eval_limit = _SMOKE_BATCHES if config.smoke else None
    train_ds = _limit(one_hot_labels(data.train, data.num_classes), limit)
    val_ds = data.validation
    if val_ds is not None:
        val_ds = _limit(one_hot_labels(val_ds, data.num_classes), eval_limit)
    if config.strategy is not None:  # each global batch split between the replicas
        train_ds, val_ds = multiworker.shard_by_data(train_ds), multiworker.shard_by_data(val_ds)
    steps_per_epoch = steps_per_epoch_of(data, config)

    model = build_model(config, data.input_shape, data.num_classes)
    first = config.fine_tune_layer()
    if config.fine_tune_epochs and first is not None and first not in {layer.name for layer in model.layers}:
        # Checked now, not after phase 1 has trained for nothing.
        raise ConfigError(
            f"fine_tune_from={first!r} is not a layer of {config.model!r}; see "
            f"`[l.name for l in tfresnet.create_model({config.model!r}).layers]`."
        )
    head = None
    if config.freeze_backbone:
        build_kwargs = {**config.model_args, "input_shape": tuple(data.input_shape)}
        head = finetune.head_layer_names(model, config.model, **build_kwargs)

    history_path = os.path.join(run_dir, "history.csv")
    report.repair_history(history_path)
    start = time.perf_counter()
    seen = 0
    # Where the next phase starts and the monitor's best so far, carried from phase to phase
    # (from the phase files when a resumed run skips finished phases). Not from the history:
    # after a kill in phase 2 it already holds phase 2's rows.
    next_epoch, best_so_far = 0, None
    for index, phase in enumerate(_phases(config)):
        if index == 0 and head is not None:
            finetune.freeze_backbone(model, head)
        if phase["name"] == "finetune":
            finetune.unfreeze_from(model, config.fine_tune_layer())
        finished = phases.load_finished(model, run_dir, phase["name"])
        if finished is not None:  # finished before a restart
            next_epoch = finished.get("next_epoch", next_epoch + phase["epochs"])
            best_so_far = finished.get("checkpoint_best", best_so_far)
            continue
        compile_model(model, config, steps_per_epoch, epochs=phase["epochs"], peak=phase["lr"])
        phase_callbacks = make_callbacks(config, run_dir, phase=phase["name"],
                                         has_validation=val_ds is not None, best_so_far=best_so_far)
        backup = next(c for c in phase_callbacks if isinstance(c, AtomicBackupAndRestore))
        if config.strategy == "multiworker":
            keras_compat.build_for_multiworker_fit(model, train_ds)
        fit = model.fit(
            train_ds,
            validation_data=val_ds,
            initial_epoch=next_epoch,  # the phase's backup, if any, moves it on
            epochs=next_epoch + phase["epochs"],
            callbacks=[*phase_callbacks, *extra_callbacks, EpochSync(data)],
            verbose=progress_verbose(config.verbose),  # no animated bar (ANSI codes) in a log file
            shuffle=False,  # the tf.data pipeline shuffles; fit cannot shuffle a Dataset
        )
        seen += len(fit.epoch) * steps_per_epoch * config.batch_size
        # A resumed phase with nothing left to run (killed after its last backup, or stopped
        # early) ends at its backup's epoch.
        next_epoch = fit.epoch[-1] + 1 if fit.epoch else (backup.restored_epoch or next_epoch)
        best_so_far = backup.checkpoint_best()
        phases.save_finished(model, run_dir, phase["name"], next_epoch=next_epoch,
                             checkpoint_best=best_so_far)
    # Rows past the end are left by an attempt that a restarted phase did not repeat.
    history = report.deduplicate_history(history_path, end=next_epoch)
    train_seconds = time.perf_counter() - start
    with contextlib.suppress(OSError):  # each phase's backup is gone once it finished
        os.rmdir(os.path.join(run_dir, "backup"))

    best = os.path.join(run_dir, "checkpoints", "best.weights.h5")
    if os.path.exists(best) and not config.early_stopping:
        # EarlyStopping already restored its best; otherwise the checkpoint holds the best epoch.
        model.load_weights(best)

    test_ds = data.test if data.test is not None else data.validation
    test_split = "test" if data.test is not None else "validation"
    metrics = {"split": test_split, "model": config.model, "data": config.data}
    if test_ds is not None:
        metrics.update(report.evaluate(model, _limit(test_ds, eval_limit), data.num_classes))
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["examples_per_second"] = round(seen / train_seconds, 1) if seen else None
    metrics["epochs_run"] = next_epoch
    metrics["class_names"] = list(data.class_names)

    model.save(os.path.join(run_dir, "model.keras"))
    with open(os.path.join(run_dir, "class_names.json"), "w") as f:
        json.dump(list(data.class_names), f)
    if "accuracy" in metrics:
        report.plot_run(run_dir, history, metrics, list(data.class_names))
    report.write_metrics(os.path.join(run_dir, "metrics.json"), metrics)
    return RunResult(run_dir=run_dir, metrics={k: v for k, v in metrics.items()
                                               if k != "misclassified"},
                     history=history, model=model, class_names=list(data.class_names))
