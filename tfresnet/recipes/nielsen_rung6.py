"""Nielsen, NNDL chapter 6, rung 6: two dense layers of 1,000, dropout 0.5, 40 epochs.

Book: 99.60% test accuracy.

Run:
    tfresnet train nielsen_rung6 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs 6           # beside the book's figure
    tfresnet train nielsen_rung6 --set smoke=true   # seconds, for tests

The row is `tfresnet.reproduce.nielsen.RUNGS[6]` (nielsen_conv2_fc1000x2, 40 epochs, mini-batch
10, eta 0.03); that module's docstring derives the L2 coefficient. Measured on the 2-core CPU
machine at batch 100, eta 0.3 (`--batch-size 100`), seeds 0-4: 99.48, 99.49, 99.58, 99.38 and
99.54%, 99.49 +- 0.08 (about 60 s an epoch alone).
"""

from tfresnet.reproduce.nielsen import recipe, rung_config
from tfresnet.training.cli import main

get_config = recipe(rung_config, 6)

if __name__ == "__main__":
    raise SystemExit(main(get_config))
