"""Time to accuracy: training wall time until the test accuracy first reaches a target.

Two recipes run one after the other through tfresnet's own trainer (`train`), each with an
`AccuracyProbe`: every `probe_every` training examples the probe classifies the whole test
split, with the model in inference mode, and notes the first time each target is reached. The
probe's own time is taken off the clock, so probing often sharpens the figure without
inflating it. The clock starts when `fit` starts (tracing and the first steps count); loading
the data and building the model are reported beside it as ``setup_seconds``.

The default pair is keras.io's `mnist_convnet` recipe (the baseline) and `mnist_fast` on full
MNIST (``mnist.npz`` from `data_dir`). A run stops when every target is reached, when the
recipe's own epochs end, or when the clock passes `max_seconds`; a target not reached is
reported as such, and a ratio against it as a lower bound.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np

from tfresnet.bench.common import markdown_table
from tfresnet.training.averaging import averaged_weights

__all__ = ["AccuracyProbe", "time_recipe", "run", "summarise", "recipe_ablations", "ablation_rows", "format_tables",
           "DEFAULT_RECIPES", "DEFAULT_TARGETS"]

# (baseline, contender): every ratio is baseline time / contender time. Packaged recipes
# (`tfresnet.recipes`), so the suite runs from any folder.
DEFAULT_RECIPES = ("mnist_convnet", "mnist_fast")
DEFAULT_TARGETS = (0.99, 0.995)
DEFAULT_PROBE_EVERY = 10_000  # examples: 6 probes an epoch of MNIST, ~1 s each on 2 CPU cores


class AccuracyProbe(keras.callbacks.Callback):
    """Measures test accuracy during `fit` and the training time until it reaches targets.

    Args:
        images: float32 test images in [0, 255], as the model takes them.
        labels: int class ids.
        targets: accuracies in (0, 1], ascending.
        every: examples between probes.
        batch_size: the run's batch size (to count examples from step indices).
        max_seconds: stop training once the clock passes this; None for no limit.

    Attributes:
        probes: one dict per probe: examples, seconds (the clock), accuracy.
        reached: target -> the first probe at or above it.
        stopped_by: ``"targets"``, ``"time"`` or None (the recipe's epochs ended).
    """

    def __init__(self, images, labels, *, targets, every: int, batch_size: int, max_seconds: float | None = None):
        super().__init__()
        self.images, self.labels = images, np.asarray(labels)
        self.targets = sorted(float(t) for t in targets)
        self.every, self.batch_size, self.max_seconds = int(every), int(batch_size), max_seconds
        self.probes, self.reached, self.stopped_by = [], {}, None
        self._start = None
        self._excluded = 0.0
        self._examples = 0
        self._next_probe = self.every

    def clock(self) -> float:
        """Training seconds so far: wall time since `fit` started, less the probes' time."""
        return time.perf_counter() - self._start - self._excluded

    def on_train_begin(self, logs=None):
        if self._start is None:  # a second phase keeps the first one's clock
            self._start = time.perf_counter()

    @property
    def started_at(self) -> float | None:
        """`time.perf_counter()` when the first `fit` began."""
        return self._start

    def on_epoch_begin(self, epoch, logs=None):
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        # Step indices rather than calls: with steps_per_execution=k there is one call per k steps.
        self._examples += (batch - self._last_batch) * self.batch_size
        self._last_batch = batch
        if self._examples >= self._next_probe:
            self._next_probe = (self._examples // self.every + 1) * self.every
            self.probe()
        if self.max_seconds is not None and self.clock() > self.max_seconds and not self.model.stop_training:
            self.stopped_by = "time"
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if not self.probes or self.probes[-1]["examples"] != self._examples:
            self.probe()  # the accuracy the run ended with

    def probe(self) -> float:
        """Classifies the test images now; returns the accuracy and records it."""
        seconds = self.clock()
        started = time.perf_counter()
        with averaged_weights(self.model):  # what the run would keep and evaluate (TrainConfig.ema)
            predictions = self.model.predict(self.images, batch_size=1000, verbose=0)
        accuracy = float(np.mean(np.argmax(predictions, axis=-1) == self.labels))
        self._excluded += time.perf_counter() - started
        record = {"examples": self._examples, "seconds": round(seconds, 3), "accuracy": accuracy}
        self.probes.append(record)
        for target in self.targets:
            if accuracy >= target and target not in self.reached:
                self.reached[target] = record
        if len(self.reached) == len(self.targets):
            self.stopped_by = "targets"
            self.model.stop_training = True
        return accuracy


def held_out_arrays(config):
    """The test split of the config's dataset as numpy arrays (the split the trainer reports)."""
    from tfresnet.training.session import load_data

    bundle = load_data(dataclasses.replace(config, augment="none", batch_size=1000, verbose=0))
    split = bundle.test if bundle.test is not None else bundle.validation
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in split))
    return np.concatenate(images), np.concatenate(labels), bundle.num_examples["train"]


def time_recipe(
    path: str,
    *,
    overrides: list[str],
    targets=DEFAULT_TARGETS,
    probe_every: int = DEFAULT_PROBE_EVERY,
    max_seconds: float | None = None,
    run_dir: str | None = None,
) -> dict:
    """Trains the recipe `path` (a packaged name or a file) with `overrides` until its targets, and times it.

    Returns:
        recipe, model, parameters, the config's batch/epochs/optimiser/schedule, setup_seconds,
        ``reached`` (target -> seconds, examples and epochs at the first probe at or above it,
        or None), the probes, the final test accuracy and what stopped the run.

    Raises:
        ConfigError: for bad overrides, before anything trains.
    """
    from tfresnet.training.cli import load_recipe
    from tfresnet.training.config import apply_overrides
    from tfresnet.training.session import smoke_config
    from tfresnet.training.trainer import train

    name, get_config = load_recipe(path)
    config = smoke_config(apply_overrides(get_config(), overrides)).validate()
    images, labels, train_examples = held_out_arrays(config)
    probe = AccuracyProbe(images, labels, targets=targets, every=probe_every, batch_size=config.batch_size,
                          max_seconds=max_seconds)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, run_dir or os.path.join(tmp, name), recipe=name, callbacks=[probe])
    total = time.perf_counter() - started
    keras.backend.clear_session()

    def at(target):
        record = probe.reached.get(target)
        if record is None:
            return None
        return {**record, "epochs": round(record["examples"] / train_examples, 3)}

    return {
        "recipe": name,
        "path": os.path.relpath(path),
        "model": config.model,
        "params": int(result.model.count_params()),
        "data": config.data,
        "train_examples": train_examples,
        "test_examples": len(labels),
        "config": {k: getattr(config, k) for k in ("batch_size", "epochs", "optimizer", "lr", "schedule",
                                                   "label_smoothing", "validation_split", "augment")},
        "setup_seconds": round(probe.started_at - started, 2),
        "total_seconds": round(total, 2),
        "reached": {str(t): at(t) for t in probe.targets},
        "final_accuracy": probe.probes[-1]["accuracy"] if probe.probes else None,
        "train_seconds": probe.probes[-1]["seconds"] if probe.probes else None,
        "stopped_by": probe.stopped_by or "epochs",
        "probes": probe.probes,
    }


def _check_recipes(recipes) -> None:
    from tfresnet import recipes as packaged

    for recipe in recipes:
        try:
            packaged.locate(recipe)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"time-to-accuracy: {err} Pass --recipes BASELINE CONTENDER.") from None


def _base_overrides(data_dir: str | None, smoke: bool) -> list[str]:
    """The overrides every timed run gets: full MNIST from `data_dir`, or the sample in smoke mode."""
    if smoke:
        return ["data=mnist-sample", "smoke=true", "export=false", "verbose=0"]
    from tfresnet.data.registry import resolve_data_dir

    data_dir = resolve_data_dir(data_dir)  # else $TFRESNET_DATA_DIR; no folder is guessed
    if not data_dir or not os.path.isfile(os.path.join(data_dir, "mnist.npz")):
        raise FileNotFoundError(
            f"time-to-accuracy needs full MNIST as mnist.npz in --data-dir (or $TFRESNET_DATA_DIR). "
            f"Received data_dir={data_dir!r}. Get it with keras.datasets.mnist.load_data() on a "
            f"machine with internet (~/.keras/datasets/mnist.npz), e.g. --data-dir ../shared/data."
        )
    return ["data=mnist", f"data_dir={data_dir}", "export=false", "verbose=0"]


def recipe_ablations(recipe: str) -> dict[str, list[str]]:
    """The recipe's ``ABLATIONS``: each kept trick's name -> the overrides that take it back.

    Raises:
        ValueError: when the recipe defines none (``--ablation`` needs them).
    """
    import importlib
    import importlib.util

    from tfresnet import recipes as packaged

    found = packaged.locate(recipe)
    if found.module:
        module = importlib.import_module(found.module)
    else:  # a recipe file: run as `train` runs it (trusted, as every recipe is)
        spec = importlib.util.spec_from_file_location(f"tfresnet_recipe_{found.name}", found.path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    ablations = getattr(module, "ABLATIONS", None)
    if not ablations:
        raise ValueError(f"--ablation: recipe {recipe!r} defines no ABLATIONS "
                         f"(a dict: trick name -> the --set overrides that take it back)")
    return {str(name): list(overrides) for name, overrides in ablations.items()}


def run(
    *,
    recipes=DEFAULT_RECIPES,
    data_dir: str | None = None,
    targets=DEFAULT_TARGETS,
    probe_every: int = DEFAULT_PROBE_EVERY,
    max_seconds: float | None = 180.0,
    seeds: int = 1,
    ablation: bool = False,
    smoke: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """The time-to-accuracy suite: each recipe of `recipes` timed to `targets` on full MNIST.

    Every recipe runs with seeds 0 .. `seeds` - 1; `summaries` gives, per recipe (and ablation),
    the median time to each target over the seeds and its range. With `ablation`, the last
    recipe also runs once per seed for each of its ``ABLATIONS`` (the trick taken back). `smoke`
    trains each recipe for a few steps on the shipped MNIST sample (the targets are then not
    reached; the run checks the machinery, not the figures).

    Raises:
        FileNotFoundError: for a missing recipe file, or without `data_dir` (or
            $TFRESNET_DATA_DIR) holding mnist.npz, outside smoke mode.
        ValueError: for `seeds` < 1, or `ablation` with a last recipe without ``ABLATIONS``.
    """
    _check_recipes(recipes)
    if seeds < 1:
        raise ValueError(f"time-to-accuracy: seeds must be >= 1. Received seeds={seeds!r}")
    variants = [(recipe, None, []) for recipe in recipes]
    if ablation:
        variants += [(recipes[-1], name, extra) for name, extra in recipe_ablations(recipes[-1]).items()]
    overrides = _base_overrides(data_dir, smoke)
    probe_every = 16 if smoke else probe_every
    runs = []
    for recipe, variant, extra in variants:
        for seed in range(seeds):
            label = recipe + (f" without: {variant}" if variant else "")
            log(f"training {label} (seed {seed}) to {', '.join(f'{t:.1%}' for t in targets)} ...")
            record = time_recipe(recipe, overrides=[*overrides, *extra, f"seed={seed}"], targets=targets,
                                 probe_every=probe_every, max_seconds=max_seconds)
            record.update(seed=seed, variant=variant, variant_overrides=extra)
            for target, hit in record["reached"].items():
                log(f"  {float(target):.1%}: " + (f"{hit['seconds']:.1f} s, {hit['epochs']:.2f} epochs" if hit
                                                  else f"not reached ({record['train_seconds']:.1f} s trained)"))
            runs.append(record)
    summaries = summarise(runs, targets)
    main = [s for s in summaries if s["variant"] is None]
    return {"targets": list(targets), "probe_every": probe_every, "max_seconds": max_seconds, "smoke": smoke,
            "seeds": seeds, "runs": runs, "summaries": summaries, "speedups": _speedups(main, targets)}


def _median(values: list[float]) -> float | None:
    """The median, where None (a target not reached) counts as slower than any time: None when
    half the seeds or more did not reach it."""
    ranked = sorted(values, key=lambda v: math.inf if v is None else v)
    middle = ranked[(len(ranked) - 1) // 2] if len(ranked) % 2 else None
    if len(ranked) % 2 == 0:
        low, high = ranked[len(ranked) // 2 - 1], ranked[len(ranked) // 2]
        middle = None if low is None or high is None else (low + high) / 2
    return middle


def summarise(runs: list[dict], targets) -> list[dict]:
    """Per (recipe, variant), in order of first appearance: over its seeds, the median and the
    range of the time and epochs to each target, how many seeds reached it, and the median final
    accuracy and training time (``reached`` and ``train_seconds`` as a single run's, for
    `_speedups`)."""
    groups: dict[tuple, list[dict]] = {}
    for record in runs:
        groups.setdefault((record["recipe"], record.get("variant")), []).append(record)
    summaries = []
    for (recipe, variant), group in groups.items():
        reached = {}
        for target in targets:
            hits = [r["reached"][str(target)] for r in group]
            times = [h["seconds"] for h in hits if h]
            median = _median([h and h["seconds"] for h in hits])
            reached[str(target)] = None if median is None else {
                "seconds": median, "min": min(times), "max": max(times),
                "epochs": _median([h and h["epochs"] for h in hits]), "seeds_reached": len(times)}
        summaries.append({
            "recipe": recipe, "variant": variant, "seeds": [r.get("seed") for r in group],
            "model": group[0].get("model"), "reached": reached,
            "not_reached": {str(t): sum(1 for r in group if not r["reached"][str(t)]) for t in targets},
            "final_accuracy": _median([r["final_accuracy"] for r in group]),
            "best_accuracy": _median([max((p["accuracy"] for p in r.get("probes") or ()),
                                          default=r["final_accuracy"]) for r in group]),
            "train_seconds": _median([r["train_seconds"] for r in group]),
        })
    return summaries


def _speedups(runs: list[dict], targets) -> list[dict]:
    """Baseline time / each other recipe's time, per target; a ``>=`` bound when only the
    contender reached it (the baseline's time is then at least its training time)."""
    baseline, *others = runs
    rows = []
    for other in others:
        for target in targets:
            key = str(target)
            base, hit = baseline["reached"][key], other["reached"][key]
            row = {"baseline": baseline["recipe"], "recipe": other["recipe"], "target": target, "speedup": None,
                   "bound": None}
            if base and hit:
                row["speedup"] = base["seconds"] / hit["seconds"]
            elif hit:
                row["speedup"], row["bound"] = baseline["train_seconds"] / hit["seconds"], ">="
            rows.append(row)
    return rows


def _time_cell(hit: dict | None, *, seeds: int = 1, not_reached: int = 0) -> str:
    """``12.3 s (0.91 ep)``, with the range over seeds ``[11.8-13.0]`` and how many missed."""
    if not hit:
        return "not reached" + (f" by {not_reached}/{seeds} seeds" if seeds > 1 else "")
    cell = f"{hit['seconds']:.1f} s ({hit['epochs']:.2f} ep)"
    if seeds > 1:
        cell += f" [{hit['min']:.1f}-{hit['max']:.1f}]" + (f", {not_reached} missed" if not_reached else "")
    return cell


def _summary_rows(result: dict) -> list[dict]:
    rows = []
    for summary in result["summaries"]:
        seeds = len(summary["seeds"])
        row = {"recipe": summary["recipe"] + (f" without: {summary['variant']}" if summary["variant"] else ""),
               "seeds": seeds, "final": f"{summary['final_accuracy']:.2%}",
               "best": f"{summary['best_accuracy']:.2%}", "trained": summary["train_seconds"]}
        for target, hit in summary["reached"].items():
            row[f"{float(target):.1%}"] = _time_cell(hit, seeds=seeds, not_reached=summary["not_reached"][target])
        rows.append(row)
    return rows


def ablation_rows(result: dict, target: float = 0.99) -> list[dict]:
    """One row per ablated trick: the median time to `target` with it (the recipe as it is) and
    without it, each with its range over seeds."""
    summaries = result["summaries"]
    ablated = [s for s in summaries if s["variant"] is not None]
    if not ablated:
        return []
    full = next(s for s in summaries if s["variant"] is None and s["recipe"] == ablated[0]["recipe"])
    key = str(target)

    def cell(summary):
        return _time_cell(summary["reached"][key], seeds=len(summary["seeds"]),
                          not_reached=summary["not_reached"][key])

    return [{"trick": s["variant"], "with": cell(full), "without": cell(s),
             "final": f"{s['final_accuracy']:.2%} (with: {full['final_accuracy']:.2%})"} for s in ablated]


def format_tables(result: dict) -> str:
    """The suite's Markdown tables: each run, the medians over seeds, the speed-ups and the ablations."""
    rows = []
    for record in result["runs"]:
        row = {"recipe": record["recipe"] + (f" without: {record['variant']}" if record.get("variant") else ""),
               "seed": record.get("seed"), "model": record["model"], "params": record["params"],
               "batch": record["config"]["batch_size"], "final": f"{record['final_accuracy']:.2%}",
               "trained": record["train_seconds"], "setup": record["setup_seconds"]}
        for target, hit in record["reached"].items():
            row[f"{float(target):.1%}"] = _time_cell(hit)
        rows.append(row)
    labels = [(f"{t:.1%}", f"to {t:.1%}") for t in result["targets"]]
    times = markdown_table(rows, [("recipe", "recipe"), ("seed", "seed"), ("model", "model"), ("params", "params"),
                                  ("batch", "batch"), *labels, ("final", "final test acc."),
                                  ("trained", "trained s"), ("setup", "setup s")])
    medians = markdown_table(_summary_rows(result), [("recipe", "recipe"), ("seeds", "seeds"), *labels,
                                                     ("best", "best test acc."), ("final", "final test acc."),
                                                     ("trained", "trained s")])
    speed = [dict(r, target=f"{r['target']:.1%}",
                  speedup=None if r["speedup"] is None else f"{r['bound'] or ''}{r['speedup']:.2f}x")
             for r in result["speedups"]]
    speedups = markdown_table(speed, [("recipe", "recipe"), ("baseline", "vs"), ("target", "target"),
                                      ("speedup", "faster by")])
    text = (f"### Time to test accuracy (training wall time, probes excluded)\n\n{times}\n\n"
            f"### Median over seeds [range]\n\n{medians}\n\n"
            f"### Speed-up over the baseline (medians)\n\n{speedups}")
    ablations = ablation_rows(result)
    if ablations:
        text += "\n\n### Ablations: median time to 99.0% with and without each trick [range]\n\n" + markdown_table(
            ablations, [("trick", "trick"), ("with", "with"), ("without", "without"), ("final", "final test acc.")])
    return text
