"""The training config: one typed dataclass a recipe returns and `--set key=value` edits.

Every field is checked before anything trains (`TrainConfig.validate`): unknown keys, wrong
types and impossible values fail naming the key, the value and the valid choices. The resolved
config is written to the run directory as `config.json`, so a run directory says everything
needed to reproduce it (timm's `args.yaml` habit).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import typing
from typing import Any, Literal

from tfresnet.training.hints import (
    ConfigError,
    allowed,
    check_keywords,
    check_type,
    is_number,
    parse_loose,
    parse_value,
    tune_candidates,
    unknown_key_message,
)

__all__ = ["TrainConfig", "ConfigError", "apply_overrides", "tunable_keys", "is_integer_key"]

# Fields a search may not vary: they say what the run is (its data, its validation set, the
# metric that scores it) or how it runs, not how well the model learns. Comparing trials that
# differ in them would compare different questions.
UNTUNABLE = frozenset({
    "tune", "data", "data_dir", "data_args", "validation_split", "monitor", "seed", "smoke",
    "drop_empty_classes", "deterministic", "augment_on",
    "gradient_flow",
    "verbose", "export", "steps_per_epoch", "tensorboard", "cache", "strategy", "weights",
    "fine_tune_from", "step_epochs", "model_args", "teacher", "ema_weights", "precise_bn_each_epoch",
    "pointwise_weight_grad",
})


# `tfresnet.data.load`'s keywords and the config field each is read from (with how, where the
# value is not the field's own): the one table behind the trainer's call to `data.load`, the
# check that `data_args` does not set them twice, and `DATA_FIELDS`.
DATA_LOAD_ARGS: dict[str, tuple[str, Any]] = {
    "data_dir": ("data_dir", None),
    "image_size": ("image_size", None),
    "resize": ("resize_mode", None),
    "batch_size": ("batch_size", None),
    "validation_split": ("validation_split", None),
    "seed": ("seed", None),
    "augment": ("augment", None),
    "cache": ("cache", lambda cache: "memory" if cache else None),
    "verbose": ("smoke", lambda smoke: 0 if smoke else 1),  # a smoke run loads quietly
    "drop_empty_classes": ("drop_empty_classes", None),
    "deterministic": ("deterministic", None),
}
# The fields that decide what the trainer's data is, with the per-epoch cap: configs (e.g. a
# search's trials) that agree on them can share one loaded dataset.
DATA_FIELDS = ("data", "data_args", *{f: 0 for f, _ in DATA_LOAD_ARGS.values()}, "steps_per_epoch", "augment_on")


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs. Field comments give units and choices."""

    # --- model -------------------------------------------------------------------------------
    model: str = "resnet20"              # a name from tfresnet.list_models()
    model_args: dict = dataclasses.field(default_factory=dict)  # family args, e.g. {"alpha": 0.5}
    # None, "imagenet" ($TFRESNET_WEIGHTS_DIR, keras' cache, else downloaded), a keras.applications
    # .h5 file as published (with or without its classifier) or a tfresnet .weights.h5.
    weights: str | None = None
    l2: float = 0.0                      # L2 on every kernel, built into the model
    dropout: float = 0.0                 # before the classifier
    drop_path: float = 0.0               # stochastic depth (residual families only)
    # --- data --------------------------------------------------------------------------------
    data: str = "mnist-sample"           # a tfresnet.data name, or folder:PATH
    data_dir: str | None = None          # else $TFRESNET_DATA_DIR, else tensorflow-datasets
    data_args: dict = dataclasses.field(default_factory=dict)  # e.g. {"label": "species"}
    image_size: int | None = None        # square side; None keeps the dataset's own size
    resize_mode: Literal["resize", "crop", "pad"] = "resize"
    augment: str = "none"                # an augmentation preset name
    augment_on: Literal["data", "model"] = "data"  # tf.data on the CPU, or the train step (training/augment.py)
    validation_split: float = 0.1
    cache: bool = True                   # cache decoded images in memory
    # A class with no usable training image (all its files skipped) is an error before training;
    # true drops it instead (and its validation/test examples) and renumbers the other classes.
    drop_empty_classes: bool = False
    # --- optimisation ------------------------------------------------------------------------
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = 1e-3                     # peak learning rate
    momentum: float = 0.9                # sgd / rmsprop
    adam_beta_1: float = 0.9             # adam / adamw: decay of the gradient's running mean
    adam_beta_2: float = 0.999           # adam / adamw: decay of the squared gradient's running mean
    ema: float | None = None             # weights' moving-average momentum (e.g. 0.99): validated, saved, kept
    # With ema: the weights validation, the best checkpoint, the kept model and the export hold.
    ema_weights: Literal["averaged", "raw"] = "averaged"
    accumulate: int = 1                  # one update per K batches, their gradients averaged: K-times the batch
    # Layer-wise rates (fastai's discriminative rates, timm's --layer-decay): each weight's rate
    # is lr x layer_decay^depth, depth counted in blocks down from the head, times the lr_mult
    # of the longest layer-name prefix it matches, e.g. {"block_1": 0.1}.
    layer_decay: float | None = None
    lr_mult: dict = dataclasses.field(default_factory=dict)
    # Knowledge distillation: a finished run directory whose model's softened outputs (at
    # distill_temperature) the student also learns; distill_alpha weighs them against the labels.
    teacher: str | None = None
    distill_temperature: float = 4.0
    distill_alpha: float = 0.5
    # Batch-norm statistics re-estimated over N training batches, weights fixed (Detectron2's
    # PreciseBN): after training, and before each epoch's validation where precise_bn_each_epoch.
    precise_bn: int = 0
    precise_bn_each_epoch: bool = False
    weight_decay: float = 0.0            # decoupled decay (adamw, sgd); l2 is the coupled one
    schedule: Literal["constant", "step", "cosine", "onecycle", "triangular"] = "constant"
    warmup_epochs: float = 0.0           # linear warm-up from 0 before the schedule
    step_epochs: list = dataclasses.field(default_factory=list)  # "step": epochs where lr *= step_gamma
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    # The classifier's units and the loss (tfresnet.training.losses.OUTPUTS): softmax with
    # log-likelihood, or sigmoid units with cross-entropy summed over them (Nielsen's network2).
    output: Literal["softmax", "sigmoid"] = "softmax"
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    # Same config, same history.csv, to the last digit: TensorFlow's ops made deterministic
    # (process-wide), each epoch's data order and augmentation keyed by (seed, epoch), so a run
    # killed and resumed also ends with an uninterrupted run's weights. Slower input pipeline
    # (ordered maps, one augmentation call at a time).
    deterministic: bool = False
    # --- callbacks ---------------------------------------------------------------------------
    monitor: str = "val_accuracy"        # metric for checkpoints, early stopping, plateaus
    early_stopping: int | None = None    # patience in epochs; best weights restored
    reduce_lr_on_plateau: int | None = None  # patience in epochs; lr *= 0.2
    tensorboard: bool = True
    # Record per-layer gradient norms every K optimizer steps (tfresnet.inspect.GradientFlow:
    # RUN_DIR/gradient_flow.csv and .png); None records nothing and costs nothing.
    gradient_flow: int | None = None
    # --- transfer learning: head first, then the top of the backbone ------------------------
    freeze_backbone: bool = False        # phase 1 trains only the new head
    fine_tune_epochs: int = 0            # phase 2 length; 0 skips fine-tuning
    fine_tune_lr: float = 1e-5           # phase 2 peak lr, far below phase 1's
    fine_tune_from: str | dict | None = None  # phase 2's first unfrozen layer, or {model: layer}; None: the model's own
    # --- performance (GPU users) -------------------------------------------------------------
    mixed_precision: Literal[None, "mixed_float16", "mixed_bfloat16"] = None
    jit_compile: bool | str = "auto"     # "auto": XLA where Keras judges it safe
    steps_per_execution: int = 1
    # A 1x1 convolution's weight gradient (TensorFlow; tfresnet.models.pointwise): "auto" times
    # TensorFlow's kernel against one matmul once per shape and keeps the faster.
    pointwise_weight_grad: Literal["auto", "conv", "matmul"] = "auto"
    strategy: Literal[None, "mirrored", "multiworker"] = None
    # --- run ---------------------------------------------------------------------------------
    export: bool = True                  # write the SavedModel at the end
    smoke: bool = False                  # shrink to seconds, for tests
    steps_per_epoch: int | None = None   # cap batches per epoch (smoke runs)
    verbose: int = 2                     # keras fit verbosity
    # --- hyperparameter search (`tfresnet tune`; `tfresnet train` ignores it) -----------------
    tune: dict = dataclasses.field(default_factory=dict)  # key -> [choices] or {min, max, step, sampling}

    def validate(self) -> TrainConfig:
        """Checks every value; returns self.

        Raises:
            ConfigError: naming the key, the value and what is allowed.
        """
        for field in dataclasses.fields(self):
            check_type(field.name, getattr(self, field.name), _hints()[field.name])
        self._check_ranges()
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"warmup_epochs must be shorter than epochs={self.epochs}. "
                f"Received warmup_epochs={self.warmup_epochs!r}"
            )
        if "classifier_activation" in self.model_args:
            raise ConfigError(
                "model_args.classifier_activation is set by output= (softmax or sigmoid), which "
                f"also picks the loss. Received model_args={self.model_args!r}"
            )
        if self.teacher is not None and self.output != "softmax":
            raise ConfigError("teacher= distils softmax outputs (soft labels are a distribution over the "
                              f"classes); output={self.output!r} has none. Received teacher={self.teacher!r}")
        if self.ema is None and self.ema_weights != "averaged":
            raise ConfigError(f"ema_weights={self.ema_weights!r} chooses between ema's average and the raw "
                              "weights; set ema too, e.g. --set ema=0.999.")
        if self.precise_bn_each_epoch and not self.precise_bn:
            raise ConfigError("precise_bn_each_epoch re-estimates over precise_bn batches; set it too, e.g. "
                              "--set precise_bn=20. Received precise_bn=0")
        if self.precise_bn and self.strategy is not None:
            raise ConfigError(f"precise_bn runs on one device; strategy={self.strategy!r} is not supported with it.")
        if self.schedule == "step" and not self.step_epochs:
            raise ConfigError("schedule='step' needs step_epochs, e.g. --set step_epochs=30,60")
        if not all(is_number(e) and e > 0 for e in self.step_epochs):
            raise ConfigError(
                "step_epochs must be epoch numbers > 0, e.g. --set step_epochs=30,60. "
                f"Received step_epochs={self.step_epochs!r}"
            )
        if isinstance(self.jit_compile, str) and self.jit_compile != "auto":
            raise ConfigError(
                f"jit_compile must be true, false or 'auto'. Received jit_compile={self.jit_compile!r}"
            )
        if self.fine_tune_epochs and not self.freeze_backbone and self.fine_tune_from is None:
            raise ConfigError(
                "fine_tune_epochs > 0 needs freeze_backbone=true or fine_tune_from=LAYER: "
                "there is nothing frozen to fine-tune."
            )
        if self.reduce_lr_on_plateau and (self.schedule != "constant" or self.warmup_epochs):
            raise ConfigError(
                "reduce_lr_on_plateau lowers a constant learning rate; it cannot be combined with "
                f"schedule={self.schedule!r} or warmup_epochs={self.warmup_epochs!r}."
            )
        if self.accumulate > 1 and self.strategy is not None:  # Keras 3.15: merge_call inside a cond
            raise ConfigError(f"accumulate={self.accumulate} does not run under strategy={self.strategy!r} (Keras "
                              "accumulates in a branch tf.distribute cannot synchronise in); raise batch_size instead.")
        self._check_names()  # before fine_tune_layer(), which looks the model up
        per_model = isinstance(self.fine_tune_from, dict)
        if per_model and self.fine_tune_epochs and self.fine_tune_layer() is None:
            raise ConfigError(
                f"fine_tune_from names layers for {sorted(self.fine_tune_from)}, not for "
                f"model={self.model!r}; add --set fine_tune_from.{self.model}=LAYER_NAME."
            )
        self._check_call_args()
        self._check_weights()
        self._check_tune()
        return self

    def _check_ranges(self) -> None:
        """Counts, rates and fractions within their bounds."""
        positive = ("epochs", "batch_size", "steps_per_execution", "accumulate")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1. Received {key}={getattr(self, key)!r}")
        for key in ("lr", "fine_tune_lr"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"{key} must be > 0. Received {key}={getattr(self, key)!r}")
        for key in ("l2", "weight_decay", "warmup_epochs", "fine_tune_epochs", "label_smoothing", "precise_bn"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0. Received {key}={getattr(self, key)!r}")
        for key in ("dropout", "drop_path", "validation_split", "label_smoothing", "adam_beta_1", "adam_beta_2"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key} must be in [0, 1). Received {key}={getattr(self, key)!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"ema must be None or in (0, 1), e.g. 0.99. Received ema={self.ema!r}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(
                f"layer_decay must be None or in (0, 1], e.g. 0.7. Received layer_decay={self.layer_decay!r}")
        if not all(is_number(v) and v >= 0 for v in self.lr_mult.values()):
            raise ConfigError(f"lr_mult values must be numbers >= 0 (0 freezes). Received lr_mult={self.lr_mult!r}")
        if not self.distill_temperature > 0 or not 0 <= self.distill_alpha <= 1:
            raise ConfigError(
                "distill_temperature must be > 0 and distill_alpha in [0, 1]. Received "
                f"distill_temperature={self.distill_temperature!r}, distill_alpha={self.distill_alpha!r}")
        for key in ("steps_per_epoch", "early_stopping", "reduce_lr_on_plateau", "image_size",
                    "gradient_flow"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be None or >= 1. Received {key}={value!r}")

    def data_load_args(self) -> dict:
        """The keywords of this config's `tfresnet.data.load` call (`DATA_LOAD_ARGS`), `data_args` included."""
        args = {key: getattr(self, field) if convert is None else convert(getattr(self, field))
                for key, (field, convert) in DATA_LOAD_ARGS.items()}
        return {**args, **self.data_args}

    def split_args(self) -> dict:
        """The `tfresnet.data.load` keywords that give this run's own splits again: its folder,
        options, validation fraction and seed (for `tfresnet evaluate` and `tfresnet inspect`)."""
        return {"data_dir": self.data_dir, "validation_split": self.validation_split, "seed": self.seed,
                **self.data_args}

    def data_key(self) -> str:
        """A string equal for two configs exactly when they load the same data (`DATA_FIELDS`)."""
        return json.dumps({k: getattr(self, k) for k in DATA_FIELDS}, sort_keys=True, default=str)

    def fine_tune_layer(self) -> str | None:
        """The first layer phase 2 unfreezes, for this config's model.

        `fine_tune_from` when it names one; otherwise the model's own starting layer from the
        registry (`ModelSpec.fine_tune_from`, e.g. the last stage of an ImageNet ResNet), or None
        (the whole backbone) for a model without one.
        """
        from tfresnet.models.registry import get_model_spec

        layer = self.fine_tune_from
        if isinstance(layer, dict):
            layer = layer.get(self.model)
        return layer if layer is not None else get_model_spec(self.model).fine_tune_from

    def _check_names(self) -> None:
        from tfresnet.models.registry import get_model_spec

        try:
            spec = get_model_spec(self.model)
        except ValueError as err:
            raise ConfigError(f"model: {err}") from None
        if self.drop_path and "plain" in spec.family:
            raise ConfigError(f"drop_path needs residual branches; {self.model!r} has none.")
        from tfresnet import data as data_lib

        try:
            data_lib.get_dataset_spec(self.data)
        except ValueError as err:
            raise ConfigError(f"data: {err}") from None
        presets = data_lib.list_augmentations()
        if self.augment not in presets:
            raise ConfigError(
                f"augment: unknown preset {self.augment!r}; choose one of {', '.join(presets)}."
            )

    def _check_call_args(self) -> None:
        """Checks `model_args` against the model builder's arguments and `data_args` against
        the dataset's, so a misspelt key fails now rather than as a TypeError after loading."""
        from tfresnet import data as data_lib
        from tfresnet.models.registry import get_model_spec

        spec = get_model_spec(self.model)
        clash = sorted(set(self.model_args) & set(spec.fixed))
        if clash:
            raise ConfigError(
                f"model_args.{clash[0]}: {self.model!r} fixes {clash[0]}={spec.fixed[clash[0]]!r}; "
                f"it cannot be set. Received model_args={self.model_args!r}"
            )
        check_keywords("model_args", self.model_args, [spec.builder], f"model {self.model!r}",
                        set_by=_MODEL_ARGS_FROM_CONFIG, skip=set(spec.fixed))
        dataset, argument = data_lib.get_dataset_spec(self.data)
        # The loader's first parameter is its LoadContext, and a prefixed name's argument
        # (folder:PATH) arrives as `path`; the rest of its own, and `load`'s, are free.
        skip = {next(iter(inspect.signature(dataset.loader).parameters)), "name", "dataset_kwargs", "options"}
        check_keywords("data_args", self.data_args, [dataset.loader, data_lib.load],
                        f"data {self.data!r}", set_by={key: field for key, (field, _) in DATA_LOAD_ARGS.items()},
                        skip=skip | ({"path"} if argument is not None else set()))

    def _check_weights(self) -> None:
        """A weights value that cannot work (an unknown word, a missing file, a width or size
        without published ImageNet weights) fails now, before any data loads."""
        if self.weights is None:
            return
        from tfresnet.models.registry import get_model_spec
        from tfresnet.models.transfer import check_weights

        try:
            # Training puts a new classifier on the data's classes: the no-classifier files fit.
            check_weights(self.weights, get_model_spec(self.model), self.model_args,
                          include_top=False, image_size=self.image_size)
        except ValueError as err:
            raise ConfigError(f"weights: {err}") from None

    def _check_tune(self) -> None:
        """Checks the search space: known tunable keys, well-formed choices and ranges, and that
        every choice and both ends of every range make a valid config on their own."""
        hints = _hints()
        for key, spec in self.tune.items():
            if spec is None:  # `--set tune.KEY=null` takes a key out of the search
                continue
            base, _, sub = key.partition(".")
            if sub and base != "model_args":
                raise ConfigError(
                    f"tune.{key}: only model_args entries can be tuned by name "
                    f"(tune.model_args.NAME). Received tune key {key!r}"
                )
            if not sub and base not in hints:
                raise ConfigError(f"tune: {unknown_key_message(base, tunable_keys())}")
            if not sub and (base in UNTUNABLE or dict in allowed(hints[base])[0]
                            or list in allowed(hints[base])[0]):
                raise ConfigError(
                    f"tune.{key}: {key} cannot be tuned (it defines the run rather than how well "
                    f"it learns). Tunable keys: {', '.join(tunable_keys())}."
                )
            for value in tune_candidates(key, spec, integer=is_integer_key(key)):
                self._check_tune_value(key, value)

    def _check_tune_value(self, key: str, value: Any) -> None:
        base, _, sub = key.partition(".")
        changes = {"tune": {}}
        # A tuned model_args entry may be meant for another tuned model: each trial checks it
        # against its own model (`_check_call_args`), failing that trial alone.
        changes[base] = self.model_args if sub else value
        try:
            dataclasses.replace(self, **changes).validate()
        except ConfigError as err:
            raise ConfigError(f"tune.{key}: the value {value!r} is not valid: {err}") from None

    def to_dict(self) -> dict:
        """The config as a plain dict (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The config as indented JSON, the text of ``config.json``."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Builds a config from a dict (e.g. a run's `config.json`), rejecting unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(unknown_key_message(key, known))
        return cls(**values)


# Builder and `tfresnet.data.load` arguments the trainer fills in from config keys: given in
# model_args or data_args too, the call would get two values.
_MODEL_ARGS_FROM_CONFIG = {
    "input_shape": "image_size", "num_classes": "data", "l2": "l2", "dropout": "dropout",
    "drop_path": "drop_path", "weights": "weights", "preprocessing": "model",
}


@functools.cache
def _hints() -> dict:
    # Cached: resolving the annotations takes milliseconds, and `validate` asks once per field.
    return typing.get_type_hints(TrainConfig)


def tunable_keys() -> list[str]:
    """The config keys a `tune` search space may name (plus ``model_args.NAME`` entries)."""
    return [name for name, hint in _hints().items()
            if name not in UNTUNABLE and not {dict, list} & set(allowed(hint)[0])]


def is_integer_key(key: str) -> bool:
    """Whether a search-space key takes integers only (``epochs``, ``batch_size``, ...)."""
    if key.startswith("model_args."):
        return False  # family arguments are untyped; a range of ints over them is an Int anyway
    kinds = allowed(_hints()[key])[0]
    return int in kinds and float not in kinds


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Applies ``key=value`` strings (from ``--set``) to a config, typed by the field.

    Dict fields take ``key.name=value`` entries (``model_args.alpha=0.5``); lists take
    comma-separated values (``step_epochs=30,60``).

    Raises:
        ConfigError: for a malformed override, an unknown key or a value of the wrong type.
    """
    hints = _hints()
    changes = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set takes key=value. Received {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        base, _, sub = key.partition(".")
        if base not in hints:
            raise ConfigError(unknown_key_message(base, hints))
        if sub:
            if dict not in allowed(hints[base])[0]:
                raise ConfigError(f"{base} is not a dict; {key}= is not valid. Received {item!r}")
            current = changes.get(base, getattr(config, base))
            if current is None:
                current = {}  # fine_tune_from.MODEL=LAYER on a config without one yet
            if not isinstance(current, dict):
                raise ConfigError(
                    f"{base} is {current!r}, not a dict of entries, so {key}= cannot add to it; "
                    f"set all of it with {base}='{{\"MODEL\": \"VALUE\"}}', or clear it first "
                    f"with {base}=null. Received {item!r}"
                )
            current = dict(current)
            current[sub] = parse_loose(text)
            changes[base] = current
        else:
            changes[base] = parse_value(base, text, hints[base])
    return dataclasses.replace(config, **changes)
