"""Nielsen, NNDL chapter 6, rung 3: a second conv-pool, 40 filters 5x5 (sigmoid).

Book: 99.06% test accuracy.

Run:
    tfresnet train nielsen_rung3 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs 3           # beside the book's figure
    tfresnet train nielsen_rung3 --set smoke=true   # seconds, for tests

The row is `tfresnet.reproduce.nielsen.RUNGS[3]` (nielsen_conv2_sigmoid, 60 epochs, mini-batch
10, eta 0.1); that module's docstring derives the L2 coefficient.
Measured on the 2-core CPU machine, seed 0, with the faster equivalent (`tfresnet bench --suite
reproduce --rungs 3 --batch-size 100`: mini-batch 100, eta 1.0): 99.00% test accuracy, 1,083 s.
At the book's mini-batch 10 it has not been trained to the end here.
"""

from tfresnet.reproduce.nielsen import recipe, rung_config
from tfresnet.training.cli import main

get_config = recipe(rung_config, 3)

if __name__ == "__main__":
    raise SystemExit(main(get_config))
