"""Hyperparameter search with KerasTuner over a recipe's `tune` section.

    from tfresnet.tuning import tune
    result = tune(config, "runs/mnist-search", tuner="random", max_trials=6)
    print(result.table())                # one row per trial; also RUN_DIR/results.csv
    result.best_dir                      # the best trial's model, a training run directory

or ``tfresnet tune tune_mnist --max-trials 6``. The search space is data in the
recipe (`TrainConfig.tune`: lists are choices, ``{min, max, step, sampling}`` dicts are ranges);
`ConfigHyperModel` maps each trial onto a copy of the config and trains it with the trainer's
own pieces. Tuners by name: `TUNERS` (random, bayesian, grid, hyperband). Searches continue
after a kill, record failed trials with their reason, keep memory flat across trials, and run
distributed with ``--workers N`` (`tfresnet.tuning.distributed`).

The names below are imported on first use, so that `tfresnet tune --help` (`tfresnet.tuning.cli`)
answers without KerasTuner and TensorFlow. Importing this package checks the installed
KerasTuner release against the tested ones (`TESTED_KERAS_TUNER`): the search reaches into
KerasTuner's private modules (oracle locks, trial state; all in `tfresnet.tuning.kt_compat`),
which a new minor release may change.
"""

import warnings
from importlib import metadata

from tfresnet._lazy import lazy_attributes

__all__ = ["tune", "TuneResult", "ConfigHyperModel", "TUNERS", "make_tuner", "keep_best",
           "results_frame", "plot_search", "TESTED_KERAS_TUNER", "check_keras_tuner_version"]

# The KerasTuner releases tfresnet.tuning was tested with; setup.cfg requires the same range.
TESTED_KERAS_TUNER = (">=1.4.7", "<1.5")

# Public name -> the submodule that defines it (PEP 562 lazy attributes).
_LAZY = {
    "ConfigHyperModel": "hypermodel",
    "plot_search": "results",
    "results_frame": "results",
    "TuneResult": "search",
    "keep_best": "search",
    "tune": "search",
    "TUNERS": "tuners",
    "make_tuner": "tuners",
}


def check_keras_tuner_version(installed: str | None = None) -> bool:
    """Warns (one line, a `RuntimeWarning`) if the installed KerasTuner is not a tested release.

    Args:
        installed: the version to check; default the installed ``keras-tuner`` distribution's.

    Returns:
        Whether the version is in `TESTED_KERAS_TUNER` (True when KerasTuner is not installed:
        importing it then fails with its own message).
    """
    from packaging.specifiers import SpecifierSet

    if installed is None:
        try:
            installed = metadata.version("keras-tuner")
        except metadata.PackageNotFoundError:
            return True
    tested = ",".join(TESTED_KERAS_TUNER)
    if installed in SpecifierSet(tested, prereleases=True):
        return True
    warnings.warn(
        f"tfresnet.tuning was tested with keras-tuner {tested} and uses its private modules; "
        f"keras-tuner {installed} is installed (pip install 'keras-tuner{tested}').",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


check_keras_tuner_version()
