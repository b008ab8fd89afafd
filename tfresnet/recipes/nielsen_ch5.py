"""Nielsen, NNDL chapter 5: sigmoid networks [784, 30 x k, 10], k = 1..4, that learn slower with depth.

Run:
    tfresnet train nielsen_ch5 --set data_dir=../shared/data                # k = 4
    tfresnet train nielsen_ch5 --set model=sigmoid_mlp_30x2 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs ch5           # all four depths and the gradient norms
    tfresnet train nielsen_ch5 --set smoke=true   # seconds, for tests

30 epochs, mini-batch 10, eta 0.1, L2 lambda 5.0, sigmoid outputs with network2's cross-entropy
(`tfresnet.reproduce.nielsen.ch5_config`). Book: best validation accuracy 96.48, 96.90, 96.57,
96.53% for k = 1..4. Measured on the 2-core CPU machine, five seeds at batch 100 and eta 1.0 (the
linear-scaling equivalent; `tfresnet bench --suite reproduce --rungs ch5 --seeds 5 --batch-size
100`): 96.50 +- 0.18, 97.07 +- 0.13, 96.65 +- 0.03, 96.61 +- 0.20% (about 60 s a run). An
earlier run at the book's batch with softmax outputs (`--set output=softmax`), seed 0: 96.90,
97.13, 96.78, 96.44% (541-701 s each).
"""

from tfresnet.reproduce.nielsen import ch5_config, recipe
from tfresnet.training.cli import main

get_config = recipe(ch5_config, 4)  # other depths: --set model=sigmoid_mlp_30xK

if __name__ == "__main__":
    raise SystemExit(main(get_config))
