"""He et al. 2015, figure 6: plain20/plain56 against resnet20/resnet56, trained alike.

Run:
    tfresnet train he_degradation --set data_dir=../shared/data              # plain20
    tfresnet train he_degradation --set model=plain56 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs degradation   # all four, curves side by side
    tfresnet train he_degradation --set smoke=true   # seconds, for tests

The paper's CIFAR-10 optimiser (SGD momentum 0.9, lr 0.1 / 10 at 32k and 48k of 64k iterations,
weight decay 1e-4, batch 128) on MNIST, which is what tfresnet can load
(`tfresnet.reproduce.degradation`). At the paper's 64k iterations it has not been trained here;
`tfresnet bench --suite reproduce --rungs degradation-cpu` (1,200 iterations) was: training error
plain20 0.46%, plain56 5.93%, resnet20 0.48%, resnet56 1.06% (README, Reproducing).
`--rungs degradation-cpu-augmented` trains the same steps on augmented digits, a harder task
(resnet20 2.02%, resnet56 3.70%); `-warmup` adds a 100-step warm-up (1.80% and 1.78%);
`degradation-cpu-long` doubles its steps (1.31% and 1.38%). `degradation-cpu-narrow` trains
`-warmup`'s steps at a quarter of the width, where both halves of figure 6 show: plain20 4.23%,
plain56 12.85%, resnet20 3.27%, resnet56 2.65% (seed 0; seed 1: 4.00, 15.45, 3.78, 2.93%).
"""

from tfresnet.reproduce.degradation import degradation_config
from tfresnet.reproduce.nielsen import recipe
from tfresnet.training.cli import main

get_config = recipe(degradation_config, "plain20")  # others: --set model=plain56|resnet20|resnet56

if __name__ == "__main__":
    raise SystemExit(main(get_config))
