"""Nielsen, NNDL chapter 6, rung 4: ReLU throughout, eta 0.03, L2 lambda 0.1.

Book: 99.23% test accuracy.

Run:
    tfresnet train nielsen_rung4 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs 4           # beside the book's figure
    tfresnet train nielsen_rung4 --set smoke=true   # seconds, for tests

The row is `tfresnet.reproduce.nielsen.RUNGS[4]` (nielsen_conv2_relu, 60 epochs, mini-batch
10, eta 0.03); that module's docstring derives the L2 coefficient.
Measured on the 2-core CPU machine, seed 0, with the faster equivalent (`tfresnet bench --suite
reproduce --rungs 4 --batch-size 100`: mini-batch 100, eta 0.3): 99.21% test accuracy, 1,214 s.
At the book's mini-batch 10 it has not been trained to the end here.
"""

from tfresnet.reproduce.nielsen import recipe, rung_config
from tfresnet.training.cli import main

get_config = recipe(rung_config, 4)

if __name__ == "__main__":
    raise SystemExit(main(get_config))
