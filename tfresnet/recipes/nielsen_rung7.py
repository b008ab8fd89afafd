"""Nielsen, NNDL chapter 6, rung 7: one of the 5 voting rung-6 networks (the vote is the suite's).

Book: 99.67% test accuracy.

Run:
    tfresnet train nielsen_rung7 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs 7           # beside the book's figure
    tfresnet train nielsen_rung7 --set smoke=true   # seconds, for tests

The row is `tfresnet.reproduce.nielsen.RUNGS[7]` (nielsen_conv2_fc1000x2, 40 epochs, mini-batch
10, eta 0.03); that module's docstring derives the L2 coefficient. The suite's rung 7 votes
rung 6's networks of seeds 0-4 (`--rungs 6 --seeds 5` trains them). Measured on the 2-core CPU
machine at batch 100, eta 0.3 (`--batch-size 100`): 99.62%, where its voters score 99.38-99.58%.
"""

from tfresnet.reproduce.nielsen import recipe, rung_config
from tfresnet.training.cli import main

get_config = recipe(rung_config, 7)

if __name__ == "__main__":
    raise SystemExit(main(get_config))
