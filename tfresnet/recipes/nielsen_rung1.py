"""Nielsen, NNDL chapter 6, rung 1: [784, 100, 10] sigmoid.

Book: 97.80% test accuracy.

Run:
    tfresnet train nielsen_rung1 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs 1           # beside the book's figure
    tfresnet train nielsen_rung1 --set smoke=true   # seconds, for tests

The row is `tfresnet.reproduce.nielsen.RUNGS[1]` (nielsen_fc100, 60 epochs, mini-batch
10, eta 0.1); that module's docstring derives the L2 coefficient.
Measured on the 2-core CPU machine, seed 0: 97.78% test accuracy at the best validation epoch, 455 s
(`tfresnet bench --suite reproduce --rungs 1 --seeds 1 --data-dir ../shared/data`).
"""

from tfresnet.reproduce.nielsen import recipe, rung_config
from tfresnet.training.cli import main

get_config = recipe(rung_config, 1)

if __name__ == "__main__":
    raise SystemExit(main(get_config))
