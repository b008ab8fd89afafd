"""Training throughput and efficiency, side by side with plain Keras.

For each model of `BENCH_MODELS`, two training steps are timed in alternation on the same
machine in the same run:

- **tfresnet**: the registry model built and compiled by the trainer's own steps
  (`tfresnet.training.session.build_model` and `compile_model`, the `TrainConfig` defaults,
  ``--set`` overrides) and fed by tfresnet's input pipeline (`tfresnet.data.pipeline`: uint8
  images cached in memory, shuffled, batched, one-hot labels, prefetched);
- **keras**: the same architecture as a Keras user writes it (`keras.applications` for the
  ImageNet models, a hand-written functional ResNet-20 for MNIST), compiled with
  ``optimizer="adam", loss="sparse_categorical_crossentropy"`` and trained with a plain
  ``model.fit(x, y)`` on in-memory float32 arrays.

Each figure is examples/second of the training step after warm-up (the first steps trace and
compile), the median of several alternating rounds. Multiply-adds per example are counted from
each model's layers (`tfresnet.models.profile.count_macs`); achieved FLOP/s take training as 3x
the forward pass; the fraction of peak divides it by a dense matmul measured in the same run
(`tfresnet.bench.common.measure_peak_flops`).

Runs with ``KERAS_BACKEND=jax`` too (TensorFlow-free machines): the tfresnet side then reads
in-memory arrays like the plain side, since the tf.data pipeline needs TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import keras
import numpy as np
from keras import layers

from tfresnet.bench.common import (
    StepTimer,
    accelerator,
    alternate,
    markdown_table,
    measure_peak_flops,
    peak_dtypes,
    training_flops_per_example,
    write_result,
)

__all__ = ["BENCH_MODELS", "BenchModel", "PEAK_DTYPE", "plain_resnet20", "best_batch", "bench_model", "run",
           "format_tables"]


def plain_resnet20(input_shape, num_classes: int) -> keras.Model:
    """ResNet-20 (He et al. 2015, sec. 4.2) as a Keras user writes it by hand: 3x3 convs of 16,
    32 and 64 filters, three basic blocks a stage, parameter-free "option A" shortcuts."""
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
            y = layers.BatchNormalization()(y)
            shortcut = x
            if stride > 1:
                shortcut = x[:, ::2, ::2, :]
                shortcut = keras.ops.pad(shortcut, [[0, 0], [0, 0], [0, 0], [0, filters - x.shape[-1]]])
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="keras_resnet20")


def _application(name: str) -> Callable[[tuple, int], keras.Model]:
    def build(input_shape, num_classes):
        return getattr(keras.applications, name)(weights=None, input_shape=input_shape, classes=num_classes)

    build.__name__ = f"keras.applications.{name}"
    return build


@dataclasses.dataclass(frozen=True)
class BenchModel:
    """A model of the benchmark: its representative input, batch sizes and plain-Keras twin.

    Attributes:
        input_shape: (height, width, channels) of one example.
        num_classes: classifier width (1000 for ImageNet-sized models).
        batch_size: default batch per accelerator kind, ``{"cpu": ..., "gpu": ...}``.
        plain: ``(input_shape, num_classes) -> keras.Model``, the same architecture in plain Keras.
        plain_name: what `plain` is, for the tables.
        candidates: batch sizes ``--best-batch`` tries per accelerator kind, ``{"cpu": (...)}``.
    """

    input_shape: tuple
    num_classes: int
    batch_size: dict
    plain: Callable[[tuple, int], keras.Model]
    plain_name: str
    candidates: dict = dataclasses.field(default_factory=dict)


# CPU batches are small so that `--suite all` fits in 15 minutes on 2 cores (training VGG-16 at
# 224x224 is ~93 GFLOP an image, ResNet-50 ~25: seconds a step at these batches); GPU batches
# are the usual ImageNet ones.
BENCH_MODELS = {
    "resnet20": BenchModel((28, 28, 1), 10, {"cpu": 128, "gpu": 512}, plain_resnet20, "hand-written ResNet-20",
                           {"cpu": (64, 128, 256), "gpu": (256, 512, 1024)}),
    "resnet50": BenchModel((224, 224, 3), 1000, {"cpu": 8, "gpu": 128}, _application("ResNet50"),
                           "keras.applications.ResNet50", {"cpu": (16, 32, 64), "gpu": (64, 128, 256)}),
    "mobilenetv2": BenchModel((224, 224, 3), 1000, {"cpu": 16, "gpu": 128}, _application("MobileNetV2"),
                              "keras.applications.MobileNetV2", {"cpu": (16, 32, 64), "gpu": (64, 128, 256)}),
    "vgg16": BenchModel((224, 224, 3), 1000, {"cpu": 4, "gpu": 64}, _application("VGG16"),
                        "keras.applications.VGG16", {"cpu": (4, 8), "gpu": (32, 64, 128)}),
}

# (warm-up steps, fewest timed steps a round, rounds) per accelerator kind. A round times as many
# steps as fill ROUND_SECONDS at the speed of the last warm-up step, and runs one untimed step
# first (its iterator filling): a VGG-16 on 2 CPU cores trains 2 + 3 * (1 + 2) = 11 steps a side.
STEPS = {"cpu": (2, 2, 3), "gpu": (10, 20, 3)}
ROUND_SECONDS = {"cpu": 3.0, "gpu": 2.0}
SMOKE_STEPS = (2, 1, 1)


def _synthetic(spec: BenchModel, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *spec.input_shape), dtype=np.uint8)
    labels = rng.integers(0, spec.num_classes, size=n).astype(np.int32)
    return images, labels


def _tfresnet_input(images, labels, *, batch_size: int, num_classes: int):
    """The trainer's input path over in-memory images: an endless dataset of one-hot batches."""
    if keras.backend.backend() != "tensorflow":
        # No tf.data without TensorFlow: float arrays, as the pipeline would deliver them.
        return images.astype("float32"), keras.utils.to_categorical(labels, num_classes)
    import tensorflow as tf

    from tfresnet.data.pipeline import make_dataset
    from tfresnet.data.sources import SplitSource
    from tfresnet.training.session import one_hot_labels

    split = SplitSource(tf.data.Dataset.from_tensor_slices((images, labels)), "image", labels,
                        "synthetic images", f"synthetic-{images.shape}")
    size = tuple(images.shape[1:3])
    dataset = make_dataset(split, training=True, image_size=size, channels=images.shape[3], source_size=size,
                           batch_size=batch_size, cache="memory", drop_remainder=True)
    return one_hot_labels(dataset, num_classes).repeat()


def _tfresnet_side(config, spec: BenchModel, batch_size: int):
    from tfresnet.training.session import build_model, compile_model

    model = build_model(config, spec.input_shape, spec.num_classes)
    compile_model(model, config, steps_per_epoch=1000, epochs=1, peak=config.lr)
    images, labels = _synthetic(spec, 4 * batch_size)
    data = _tfresnet_input(images, labels, batch_size=batch_size, num_classes=spec.num_classes)

    def fit(steps: int, timer=None):
        callbacks = [timer] if timer else []
        if isinstance(data, tuple):
            x, y = data
            repeats = -(-steps * batch_size // len(x))
            return model.fit(np.concatenate([x] * repeats), np.concatenate([y] * repeats), batch_size=batch_size,
                             steps_per_epoch=steps, epochs=1, verbose=0, callbacks=callbacks)
        return model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)

    return model, fit


def _keras_side(spec: BenchModel, batch_size: int):
    model = spec.plain(spec.input_shape, spec.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def fit(steps: int, timer=None):
        images, labels = _synthetic(spec, steps * batch_size, seed=steps)
        x = images.astype("float32") / 255.0  # what a user does before fit
        return model.fit(x, labels, batch_size=batch_size, epochs=1, verbose=0,
                         callbacks=[timer] if timer else [])

    return model, fit


def _rate(fit, steps: int, batch_size: int) -> float:
    timer = StepTimer(warmup=1)  # a round's first step waits for its iterator to fill
    fit(steps + 1, timer)
    return batch_size * timer.steps / timer.seconds


def _steps_per_round(fit, warmup: int, fewest: int, seconds: float) -> int:
    """Runs the warm-up; returns the steps that take about `seconds` at the last step's speed."""
    warmup = max(warmup, 2)  # the first step traces; the last one is the speed to go by
    timer = StepTimer(warmup=warmup - 1)
    fit(warmup, timer)
    step = timer.seconds / max(timer.steps, 1)
    return max(fewest, min(200, round(seconds / step))) if step > 0 else fewest


def best_batch(name: str, *, overrides: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """The batch of `BENCH_MODELS[name].candidates` at which tfresnet's training step is fastest.

    Each candidate is timed on the tfresnet side alone (2 warm-up steps, then a round as
    `bench_model` times one); the plain side is then compared at the winner, so each model is
    compared where it runs best rather than at one batch for all.

    Returns:
        ``{"batch_size": best, "sweep": {batch: examples/s}}``.
    """
    from tfresnet.training.config import TrainConfig, apply_overrides
    from tfresnet.training.session import precision_policy

    spec, kind = BENCH_MODELS[name], accelerator()
    sweep = {}
    for batch_size in spec.candidates.get(kind, (spec.batch_size[kind],)):
        keras.utils.set_random_seed(0)
        config = apply_overrides(TrainConfig(model=name, batch_size=batch_size), list(overrides or []))
        with precision_policy(config):
            model, fit = _tfresnet_side(config, spec, batch_size)
            timed = _steps_per_round(fit, STEPS[kind][0], STEPS[kind][1], ROUND_SECONDS[kind])
            sweep[batch_size] = _rate(fit, timed, batch_size)
        del model
        keras.backend.clear_session()
        log(f"  batch {batch_size}: {sweep[batch_size]:,.1f} ex/s")
    return {"batch_size": max(sweep, key=sweep.get), "sweep": sweep}


def bench_model(
    name: str,
    *,
    batch_size: int | None = None,
    steps: tuple[int, int, int] | None = None,
    overrides: list[str] | None = None,
    profile_dir: str | None = None,
    ceiling_seconds: float | None = None,
) -> dict:
    """Times tfresnet's and plain Keras's training step for one model of `BENCH_MODELS`.

    Args:
        name: a key of `BENCH_MODELS`.
        batch_size: default from the table for this accelerator.
        steps: (warm-up steps, timed steps a round, rounds), exactly; default from `STEPS`, with
            as many timed steps as fill `ROUND_SECONDS`.
        overrides: ``key=value`` edits of the tfresnet side's `TrainConfig` (e.g.
            ``steps_per_execution=4``); the plain side stays a plain ``compile()``.
        profile_dir: where to trace one more round of tfresnet's steps with the TensorFlow
            profiler (`tfresnet.bench.trace`); the row then holds its time per op type.
        ceiling_seconds: also time the tfresnet model's matrix kernels alone, each timed repeat
            lasting this long (`tfresnet.bench.kernels.kernel_ceiling`): the fastest its step could be.

    Returns:
        A row: model, input, batch, parameters, multiply-adds per example, each side's
        examples/s (median and rounds) and their ratio.

    Raises:
        ValueError: for a name not in `BENCH_MODELS`.
    """
    from tfresnet.models.profile import count_macs
    from tfresnet.training.config import TrainConfig, apply_overrides
    from tfresnet.training.session import precision_policy

    if name not in BENCH_MODELS:
        raise ValueError(f"No benchmark model {name!r}; choose from {', '.join(BENCH_MODELS)}.")
    spec = BENCH_MODELS[name]
    kind = accelerator()
    batch_size = batch_size or spec.batch_size[kind]
    warmup, timed, rounds = steps or STEPS[kind]
    keras.utils.set_random_seed(0)
    config = apply_overrides(TrainConfig(model=name, batch_size=batch_size), list(overrides or []))
    with precision_policy(config):  # the plain Keras user under the same global policy too
        ours, ours_fit = _tfresnet_side(config, spec, batch_size)
        theirs, theirs_fit = _keras_side(spec, batch_size)
        macs, macs_plain = count_macs(ours), count_macs(theirs)
        seconds = 0.0 if steps else ROUND_SECONDS[kind]
        # Both sides time the same number of steps: the slower one's count.
        timed = min(_steps_per_round(ours_fit, warmup, timed, seconds),
                    _steps_per_round(theirs_fit, warmup, timed, seconds))
        rates = alternate({"tfresnet": lambda: _rate(ours_fit, timed, batch_size),
                           "keras": lambda: _rate(theirs_fit, timed, batch_size)}, rounds)
        profile = None
        if profile_dir is not None:
            from tfresnet.bench.trace import profile_steps

            profile = profile_steps(lambda: ours_fit(timed), profile_dir, model=ours, steps=timed)
        kernels = None
        if ceiling_seconds is not None:
            from tfresnet.bench.kernels import kernel_ceiling

            kernels = kernel_ceiling(ours, batch_size, dtype=PEAK_DTYPE[config.mixed_precision],
                                     seconds=ceiling_seconds)
    row = {
        "model": name,
        "plain": spec.plain_name,
        "input": "x".join(map(str, spec.input_shape)),
        "batch_size": batch_size,
        "params": int(ours.count_params()),
        "params_plain": int(theirs.count_params()),
        "macs": int(macs),
        "macs_plain": int(macs_plain),
        "tfresnet_examples_per_s": rates["tfresnet"]["median"],
        "keras_examples_per_s": rates["keras"]["median"],
        "tfresnet_rounds": rates["tfresnet"]["rounds"],
        "keras_rounds": rates["keras"]["rounds"],
        "ratio": rates["tfresnet"]["median"] / rates["keras"]["median"],
        "steps": {"warmup": warmup, "timed": timed, "rounds": rounds},
        "mixed_precision": config.mixed_precision,
        "profile": profile,
        "ceiling": kernels,
    }
    del ours, theirs
    keras.backend.clear_session()
    return row


# The matmul peak a row is held against: that of the precision its matrix work runs in.
PEAK_DTYPE = {None: "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def _efficiency(row: dict, peaks: dict) -> None:
    flops = training_flops_per_example(row["macs"])
    dtype = PEAK_DTYPE[row["mixed_precision"]]
    row["training_flops_per_example"] = flops
    row["peak_dtype"] = dtype
    for side in ("tfresnet", "keras"):
        achieved = row[f"{side}_examples_per_s"] * flops
        row[f"{side}_flops_per_s"] = achieved
        row[f"{side}_fraction_of_peak"] = achieved / peaks[dtype]["flops_per_s"]
    if row.get("ceiling"):
        rate = row["ceiling"]["ceiling_examples_per_s"]
        row["ceiling_fraction_of_peak"] = rate * flops / peaks[dtype]["flops_per_s"]
        row["fraction_of_ceiling"] = row["tfresnet_examples_per_s"] / rate


def _peaks(dtypes, side, before: dict | None = None) -> dict:
    """Each precision's dense matmul peak, keeping the better of this and an earlier measurement:
    another process busy at one of them would otherwise lower the peak and flatter every fraction."""
    peaks = dict(before or {})
    for dtype in dtypes:
        now = measure_peak_flops(dtype, side=side)
        if dtype not in peaks or now["flops_per_s"] > peaks[dtype]["flops_per_s"]:
            peaks[dtype] = now
    return peaks


def run(
    *,
    models: list[str] | None = None,
    batch_size: int | None = None,
    overrides: list[str] | None = None,
    smoke: bool = False,
    best: bool = False,
    profile_dir: str | None = None,
    ceiling: bool = False,
    out_path: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """The throughput suite: the peaks, then one row per model.

    `smoke` runs ResNet-20 alone with one timed step and a small peak matmul, in seconds.
    `best` first finds each model's fastest batch (`best_batch`); `profile_dir` traces each
    model's steps and `ceiling` times its matrix kernels alone (`bench_model`). With `out_path`,
    the result so far is written after each model.
    """
    models = models or (["resnet20"] if smoke else list(BENCH_MODELS))
    unknown = [m for m in models if m not in BENCH_MODELS]
    if unknown:
        raise ValueError(f"No benchmark model {unknown}; choose from {', '.join(BENCH_MODELS)}.")
    side = 256 if smoke else None
    dtypes = list(peak_dtypes())
    for mixed in overrides or []:  # a mixed-precision run is held against its own precision's peak
        if mixed.startswith("mixed_precision="):
            dtypes.append(PEAK_DTYPE.get(mixed.partition("=")[2] or None, "float32"))
    dtypes = list(dict.fromkeys(dtypes))
    peaks = _peaks(dtypes, side)
    log("peak dense matmul: " + ", ".join(f"{d} {p['flops_per_s'] / 1e9:,.0f} GFLOP/s" for d, p in peaks.items()))
    result = {"peaks": peaks, "overrides": list(overrides or []), "smoke": smoke, "rows": []}
    for name in models:
        chosen = {"batch_size": batch_size, "sweep": None}
        if best and not batch_size:
            log(f"best batch for {name} ...")
            chosen = best_batch(name, overrides=overrides, log=log)
        log(f"timing {name} ...")
        row = bench_model(name, batch_size=chosen["batch_size"] or (8 if smoke else None),
                          steps=SMOKE_STEPS if smoke else None, overrides=overrides,
                          profile_dir=None if profile_dir is None else os.path.join(profile_dir, name),
                          ceiling_seconds=(0.01 if smoke else 0.2) if ceiling else None)
        row["batch_sweep"] = chosen["sweep"]
        log(f"  tfresnet {row['tfresnet_examples_per_s']:,.1f} ex/s, keras {row['keras_examples_per_s']:,.1f} "
            f"ex/s, ratio {row['ratio']:.3f}")
        _efficiency(row, peaks)
        result["rows"].append(row)
        if out_path:
            write_result(out_path, "throughput", result)
    result["peaks"] = peaks = _peaks(dtypes, side, peaks)  # measured again at the end, the better kept
    for row in result["rows"]:
        _efficiency(row, peaks)
    return result


def format_tables(result: dict) -> str:
    """The suite's Markdown tables: throughput against plain Keras, efficiency, and where measured
    the batch sweep and each model's time per op type."""
    rows = [dict(r, gmacs=r["macs"] / 1e9, tfresnet_tflops=r["tfresnet_flops_per_s"] / 1e12,
                 tfresnet_pct=100 * r["tfresnet_fraction_of_peak"], keras_pct=100 * r["keras_fraction_of_peak"],
                 peak=r.get("peak_dtype", "float32"))
            for r in result["rows"]]
    peaks = ", ".join(f"{d} {p['flops_per_s'] / 1e12:.3g} TFLOP/s" for d, p in result["peaks"].items())
    speed = markdown_table(rows, [
        ("model", "model"), ("input", "input"), ("batch_size", "batch"), ("plain", "plain Keras twin"),
        ("tfresnet_examples_per_s", "tfresnet ex/s"), ("keras_examples_per_s", "Keras ex/s"),
        ("ratio", "tfresnet / Keras"),
    ])
    efficiency = markdown_table(rows, [
        ("model", "model"), ("gmacs", "GMACs / example"), ("tfresnet_tflops", "achieved TFLOP/s"),
        ("peak", "peak of"), ("tfresnet_pct", "% of peak (tfresnet)"), ("keras_pct", "% of peak (Keras)"),
    ])
    text = (f"### Training throughput (examples/s, median of alternating rounds)\n\n{speed}\n\n"
            f"### Efficiency (training = 3x forward; peak: dense matmul, {peaks})\n\n{efficiency}")
    sweeps = [{"model": r["model"], "sweep": ", ".join(f"{b}: {v:,.1f}" for b, v in r["batch_sweep"].items())}
              for r in result["rows"] if r.get("batch_sweep")]
    if sweeps:
        table = markdown_table(sweeps, [("model", "model"), ("sweep", "tfresnet ex/s by batch")])
        text += f"\n\n### Best batch (tfresnet side alone)\n\n{table}"
    ceilings = [dict(r, ceiling_rate=r["ceiling"]["ceiling_examples_per_s"], peak=r.get("peak_dtype", "float32"),
                     ceiling_pct=100 * r["ceiling_fraction_of_peak"], of_ceiling_pct=100 * r["fraction_of_ceiling"])
                for r in result["rows"] if r.get("ceiling")]
    if ceilings:
        table = markdown_table(ceilings, [
            ("model", "model"), ("batch_size", "batch"), ("tfresnet_examples_per_s", "tfresnet ex/s"),
            ("ceiling_rate", "kernels-alone ceiling ex/s"), ("peak", "peak of"),
            ("ceiling_pct", "ceiling % of peak"), ("of_ceiling_pct", "tfresnet % of ceiling"),
        ])
        text += ("\n\n### Matrix-kernel ceiling (each convolution's forward, input- and weight-gradient kernels "
                 f"timed alone)\n\n{table}")
    for row in result["rows"]:
        if row.get("ceiling"):
            from tfresnet.bench.kernels import format_ceiling

            text += f"\n\n### {row['model']}'s slowest kernels\n\n{format_ceiling(row['ceiling'], top=8)}"
        if row.get("profile"):
            from tfresnet.bench.trace import format_profile

            text += f"\n\n### Where {row['model']}'s step goes (batch {row['batch_size']})\n\n"
            text += format_profile(row["profile"])
    return text
