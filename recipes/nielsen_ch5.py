"""Nielsen, NNDL chapter 5: sigmoid networks [784, 30 x k, 10], k = 1..4, that learn slower with depth.

Run:
    python recipes/nielsen_ch5.py --set data_dir=../shared/data                # k = 4
    python recipes/nielsen_ch5.py --set model=sigmoid_mlp_30x2 --set data_dir=../shared/data
    tfresnet bench --suite reproduce --rungs ch5           # all four depths and the gradient norms
    tfresnet train recipes/nielsen_ch5.py --set smoke=true   # seconds, for tests

30 epochs, mini-batch 10, eta 0.1, L2 lambda 5.0 (`tfresnet.reproduce.nielsen.ch5_config`).
Book: best validation accuracy 96.48, 96.90, 96.57, 96.53% for k = 1..4. Measured on the 2-core
CPU machine at the book's settings, seed 0 (`tfresnet bench --suite reproduce --rungs ch5`):
96.90, 97.13, 96.78, 96.44% (541-701 s each), with softmax outputs where the book has sigmoid.
"""

from tfresnet.reproduce.nielsen import ch5_config, recipe
from tfresnet.training.cli import main

get_config = recipe(ch5_config, 4)  # other depths: --set model=sigmoid_mlp_30xK

if __name__ == "__main__":
    raise SystemExit(main(get_config))
