"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates for Training Neural
Networks", section 3.3; fastai's ``lr_find``): ``tfresnet lr-find RECIPE``.

A short run whose learning rate rises exponentially from `min_lr` to `max_lr`, one value per
optimizer step (a Keras callback assigns the optimizer's ``learning_rate`` before each batch),
recording each batch's loss. The loss is smoothed exponentially (fastai's ``beta = 0.98`` with
bias correction) and the test stops early once the smoothed loss exceeds 4x its minimum: the
rate is then far past where training diverges.

Two suggestions are computed from the smoothed curve:

- ``minimum / 10``: a tenth of the rate at the lowest smoothed loss, the rule of Smith's paper
  and of fastai v1 (the minimum is already at the edge of instability);
- ``steepest``: the rate where the smoothed loss falls fastest against log(lr).

`SUGGESTION_RULE` (``minimum / 10``) is the one suggested: on a 100-step curve the steepest
point sits where the loss first moves, which is noisy from run to run, while the minimum is a
robust landmark. Both are printed and saved.

`lr_find` builds a fresh model from a recipe's config (nothing of an earlier run is touched);
`lr_range_test` runs the test on a compiled model and restores its weights and optimizer state
afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time

import numpy as np

from tfresnet.files import write_atomic, write_json_atomic

__all__ = ["LRFindResult", "LRRangeTest", "SUGGESTION_RULE", "add_arguments", "lr_find", "lr_range_test", "run"]

SMOOTHING = 0.98      # fastai's beta
DIVERGENCE = 4.0      # stop once the smoothed loss exceeds this many times its minimum
SUGGESTION_RULE = "minimum/10"
_SKIP_START = 3       # first points left out of the suggestions: the bias-corrected average still settles
_DEFAULTS = {"steps": 100, "min_lr": 1e-7, "max_lr": 10.0}


@dataclasses.dataclass
class LRFindResult:
    """What a range test measured.

    Attributes:
        lrs: the learning rate of each step run.
        losses: each step's training loss (the batch's, not an epoch average).
        smoothed: the exponentially smoothed, bias-corrected losses.
        suggestions: rule name -> learning rate (``"minimum/10"``, ``"steepest"``).
        suggested: the rate of `SUGGESTION_RULE`.
        stopped_early: why the test ended before its last step ("" when it ran them all).
    """

    lrs: list
    losses: list
    smoothed: list
    suggestions: dict
    suggested: float
    stopped_early: str = ""

    def to_dict(self) -> dict:
        """The result as a plain dict with the suggestion rule (what ``lr_find.json`` holds)."""
        return {**dataclasses.asdict(self), "rule": SUGGESTION_RULE}


class LRRangeTest:
    """Keras callback: sets an exponentially rising lr before each batch and records the loss.

    Run it under ``fit(..., epochs=steps, steps_per_epoch=1)``: Keras' ``logs["loss"]`` is the
    running mean over an epoch, so one-batch epochs are what make it each batch's own loss.
    """

    def __new__(cls, *args, **kwargs):  # keras imported only when the test runs
        import keras

        class _Callback(keras.callbacks.Callback):
            def __init__(self, steps, min_lr, max_lr):
                super().__init__()
                self.lrs = list(np.geomspace(min_lr, max_lr, steps))
                self.losses, self.smoothed, self.stopped_early = [], [], ""
                self._average = 0.0

            def on_train_batch_begin(self, batch, logs=None):
                self.model.optimizer.learning_rate.assign(self.lrs[len(self.losses)])

            def on_train_batch_end(self, batch, logs=None):
                loss = float(logs["loss"])
                self.losses.append(loss)
                if not math.isfinite(loss):
                    self.stopped_early = f"loss became {loss} at lr {self.lrs[len(self.losses) - 1]:.3g}"
                    self.model.stop_training = True
                    return
                self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
                self.smoothed.append(self._average / (1 - SMOOTHING ** len(self.losses)))
                best = min(self.smoothed)
                if self.smoothed[-1] > DIVERGENCE * best:
                    self.stopped_early = (f"smoothed loss {self.smoothed[-1]:.3g} > {DIVERGENCE:g}x its "
                                          f"minimum {best:.3g} at lr {self.lrs[len(self.losses) - 1]:.3g}")
                    self.model.stop_training = True

        return _Callback(*args, **kwargs)


def suggest(lrs, smoothed) -> dict:
    """The two suggestions (see the module docstring) from a smoothed loss curve.

    Raises:
        ValueError: for a curve too short to suggest anything.
    """
    lrs, smoothed = np.asarray(lrs[: len(smoothed)], dtype=float), np.asarray(smoothed, dtype=float)
    if len(smoothed) < _SKIP_START + 3:
        raise ValueError(
            f"The range test stopped after {len(smoothed)} finite losses, too few to suggest a rate; "
            f"lower --min-lr or raise --steps. Received min_lr={lrs[0] if len(lrs) else None}"
        )
    lrs, smoothed = lrs[_SKIP_START:], smoothed[_SKIP_START:]
    slope = np.gradient(smoothed, np.log(lrs))
    return {
        "minimum/10": float(lrs[int(np.argmin(smoothed))] / 10),
        "steepest": float(lrs[int(np.argmin(slope))]),
    }


def lr_range_test(model, dataset, *, steps: int = _DEFAULTS["steps"], min_lr: float = _DEFAULTS["min_lr"],
                  max_lr: float = _DEFAULTS["max_lr"], restore: bool = True) -> LRFindResult:
    """Runs the range test on a compiled model; its weights and optimizer state are restored after.

    Args:
        model: a model compiled with a float learning rate (not a schedule).
        dataset: training batches; repeated when shorter than `steps`.
        steps: the most optimizer steps (the test may stop earlier).
        min_lr: first learning rate.
        max_lr: last learning rate.
        restore: put back the model's weights and the optimizer's variables (its slots, step
            count and learning rate) as they were.

    Returns:
        An `LRFindResult`.

    Raises:
        ValueError: for bad bounds or steps, or a model compiled with a schedule.
    """
    if not (isinstance(steps, int) and steps >= 10):
        raise ValueError(f"steps must be an int of at least 10. Received steps={steps!r}")
    if not (0 < min_lr < max_lr):
        raise ValueError(f"Need 0 < min_lr < max_lr. Received min_lr={min_lr!r}, max_lr={max_lr!r}")
    optimizer = model.optimizer
    if optimizer is None or not hasattr(optimizer.learning_rate, "assign"):
        raise ValueError(
            "lr_range_test needs a model compiled with a float learning rate, not a schedule: the "
            f"test sets the rate itself. Received learning_rate={getattr(optimizer, 'learning_rate', None)!r}"
        )
    if not optimizer.built:  # built now so that its starting state can be put back
        optimizer.build(model.trainable_variables)
    saved = [(v, v.numpy()) for v in [*model.weights, *optimizer.variables]] if restore else []
    callback = LRRangeTest(steps, min_lr, max_lr)
    try:
        model.fit(dataset.repeat(), epochs=steps, steps_per_epoch=1, callbacks=[callback], verbose=0,
                  shuffle=False)  # the tf.data pipeline shuffles
    finally:
        for variable, value in saved:
            variable.assign(value)
    suggestions = suggest(callback.lrs, callback.smoothed)
    return LRFindResult(
        lrs=[float(x) for x in callback.lrs[: len(callback.losses)]],
        losses=callback.losses, smoothed=callback.smoothed, suggestions=suggestions,
        suggested=suggestions[SUGGESTION_RULE], stopped_early=callback.stopped_early,
    )


def plot(result: LRFindResult, path: str) -> str:
    """Writes the smoothed loss against the learning rate (log x), the suggestions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.smoothed)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs[:n], result.losses[:n], color="0.8", lw=1, label="batch loss")
    ax.plot(result.lrs[:n], result.smoothed, lw=2, label="smoothed")
    for (rule, lr), style in zip(result.suggestions.items(), ("--", ":")):
        ax.axvline(lr, color="C3" if rule == SUGGESTION_RULE else "C2", ls=style,
                   label=f"{rule}: {lr:.2g}" + (" (suggested)" if rule == SUGGESTION_RULE else ""))
    ax.set_xscale("log")
    top = max(result.smoothed[0], min(result.smoothed)) * 2
    ax.set_ylim(min(result.smoothed) * 0.9, top)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomic(path, lambda partial: fig.savefig(partial, dpi=100))
    plt.close(fig)
    return path


def lr_find(config, *, steps: int = _DEFAULTS["steps"], min_lr: float = _DEFAULTS["min_lr"],
            max_lr: float = _DEFAULTS["max_lr"], out_dir: str | None = None) -> LRFindResult:
    """The range test on a fresh model built from a recipe's config, with the trainer's helpers.

    The config's optimizer, loss (label smoothing included), regularisation, data and batch
    size are used; its schedule is not (the test sets the rate). Writes ``lr_find.json`` and
    ``lr_find.png`` to `out_dir` when given.

    Returns:
        An `LRFindResult`.

    Raises:
        ConfigError: for a bad config.
    """
    from tfresnet.training.determinism import seed_everything
    from tfresnet.training.session import build_model, compile_model, load_data, one_hot_labels, smoke_config

    config = smoke_config(config.validate())  # checked as given, then shrunk
    # compile_model gives the optimizer a plain float rate (which the test can assign) only for
    # configs with reduce_lr_on_plateau; no fit here runs that callback, so only the rate changes.
    constant = dataclasses.replace(config, reduce_lr_on_plateau=1)
    seed_everything(config.seed)
    data = load_data(constant)
    model = build_model(constant, data.input_shape, data.num_classes)
    compile_model(model, constant, steps_per_epoch=steps, epochs=1, peak=min_lr)
    result = lr_range_test(model, one_hot_labels(data.train, data.num_classes), steps=steps,
                           min_lr=min_lr, max_lr=max_lr, restore=False)
    if out_dir is not None:
        write_json_atomic(os.path.join(out_dir, "lr_find.json"),
                          {**result.to_dict(), "model": config.model, "data": config.data,
                           "optimizer": config.optimizer, "batch_size": config.batch_size}, indent=1)
        plot(result, os.path.join(out_dir, "lr_find.png"))
    return result


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``tfresnet lr-find`` arguments."""
    parser.add_argument("recipe", help="a packaged recipe's name (tfresnet recipes lists them) or a recipe file's path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), as for tfresnet train")
    parser.add_argument("--steps", type=int, default=_DEFAULTS["steps"],
                        help=f"most optimizer steps (default: {_DEFAULTS['steps']})")
    parser.add_argument("--min-lr", type=float, default=_DEFAULTS["min_lr"],
                        help=f"first learning rate (default: {_DEFAULTS['min_lr']:g})")
    parser.add_argument("--max-lr", type=float, default=_DEFAULTS["max_lr"],
                        help=f"last learning rate (default: {_DEFAULTS['max_lr']:g})")
    parser.add_argument("--out", default=None, help="output folder (default: runs/lr_find-RECIPE-TIME)")


def run(args: argparse.Namespace) -> int:
    """Runs ``tfresnet lr-find``."""
    from tfresnet.runs import new_run_dir
    from tfresnet.training.cli import load_recipe
    from tfresnet.training.config import apply_overrides

    name, get_config = load_recipe(args.recipe)
    config = apply_overrides(get_config(), args.overrides).validate()  # before its folder is made
    out_dir = args.out or new_run_dir(f"lr_find-{name}")
    start = time.perf_counter()
    result = lr_find(config, steps=args.steps, min_lr=args.min_lr, max_lr=args.max_lr, out_dir=out_dir)
    print(f"{len(result.losses)} steps from lr {result.lrs[0]:.2g} to {result.lrs[-1]:.2g} in "
          f"{time.perf_counter() - start:.1f} s ({config.model}, {config.optimizer}, batch {config.batch_size})"
          + (f"; stopped: {result.stopped_early}" if result.stopped_early else ""))
    for rule, lr in result.suggestions.items():
        print(f"  {rule:<11} {lr:.3g}" + ("   <- suggested" if rule == SUGGESTION_RULE else ""))
    print(f"suggested lr: {result.suggested:.3g} (--set lr={result.suggested:.2g}); "
          f"wrote {out_dir}/lr_find.json, lr_find.png")
    return 0
