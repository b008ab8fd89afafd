"""Hyperparameter search with KerasTuner over a recipe's `tune` section.

    from tfresnet.tuning import tune
    result = tune(config, "runs/mnist-search", tuner="random", max_trials=6)
    print(result.table())                # one row per trial; also RUN_DIR/results.csv
    result.best_dir                      # the best trial's model, a training run directory

or ``tfresnet tune recipes/tune_mnist.py --max-trials 6``. The search space is data in the
recipe (`TrainConfig.tune`: lists are choices, ``{min, max, step, sampling}`` dicts are ranges);
`ConfigHyperModel` maps each trial onto a copy of the config and trains it with the trainer's
own pieces. Tuners by name: `TUNERS` (random, bayesian, grid, hyperband). Searches continue
after a kill, record failed trials with their reason, keep memory flat across trials, and run
distributed with ``--workers N`` (`tfresnet.tuning.distributed`).
"""

from tfresnet.tuning.hypermodel import ConfigHyperModel
from tfresnet.tuning.results import plot_search, results_frame
from tfresnet.tuning.search import TuneResult, keep_best, tune
from tfresnet.tuning.tuners import TUNERS, make_tuner

__all__ = ["tune", "TuneResult", "ConfigHyperModel", "TUNERS", "make_tuner", "keep_best",
           "results_frame", "plot_search"]
