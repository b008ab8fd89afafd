"""ResNet-20 (He et al. 2015, sec 4.2) on MNIST: the main job of `make demo`.

Run:
    tfresnet train mnist_resnet                   # mnist-sample, shipped with tfresnet
    tfresnet train mnist_resnet --set data=mnist --set data_dir=../shared/data
    tfresnet train mnist_resnet --set smoke=true   # seconds, for tests

Measured on a 2-core CPU (README.md, "Measured results"): on mnist-sample, 98.4% test accuracy
after 6 epochs and precise batch norm, 86 s in all; on full MNIST (before precise batch norm),
99.66% test accuracy after 6 epochs, about 37 minutes. GPU: not measured (the GPU machines lent
here have no TensorFlow for tf.data).

`precise_bn=20` re-estimates the batch-norm statistics over 20 unaugmented training batches
once training ends (docs/training.md, "Precise batch norm"): with `--set epochs=1` the test
accuracy on mnist-sample's 1,000 test digits went from 18.2% (the moving statistics still
describe the first steps' weights) to 95.1%, for the same weights.
"""

from tfresnet.training import TrainConfig
from tfresnet.training.cli import main


def get_config() -> TrainConfig:
    """ResNet-20 on 28x28 digits with a one-cycle schedule."""
    return TrainConfig(
        model="resnet20",
        data="mnist-sample",
        validation_split=0.1,
        augment="none",
        optimizer="adam",
        lr=3e-3,
        schedule="onecycle",       # fast convergence in few epochs (Smith & Topin 2018)
        epochs=6,
        batch_size=128,
        l2=1e-4,
        label_smoothing=0.05,
        precise_bn=20,             # batch-norm statistics of the final weights, not lagging ones
        seed=0,
    )


if __name__ == "__main__":
    raise SystemExit(main(get_config))
