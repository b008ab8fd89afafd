"""Nielsen, NNDL chapter 6, rung 2: a 20-filter 5x5 conv + 2x2 max-pool in front of rung 1 (sigmoid).

Book: 98.78% test accuracy.

Run:
    tfresnet train nielsen_rung2 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs 2           # beside the book's figure
    tfresnet train nielsen_rung2 --set smoke=true   # seconds, for tests

The row is `tfresnet.reproduce.nielsen.RUNGS[2]` (nielsen_conv1_sigmoid, 60 epochs, mini-batch
10, eta 0.1); that module's docstring derives the L2 coefficient.
Measured on the 2-core CPU machine, seed 0, with the faster equivalent (`tfresnet bench --suite
reproduce --rungs 2 --batch-size 100`: mini-batch 100, eta 1.0): 98.78% test accuracy, 600 s.
At the book's settings (`--rungs 2`, mini-batch 10, eta 0.1): 98.65%, 1,218 s.
"""

from tfresnet.reproduce.nielsen import recipe, rung_config
from tfresnet.training.cli import main

get_config = recipe(rung_config, 2)

if __name__ == "__main__":
    raise SystemExit(main(get_config))
