"""keras.io's `mnist_convnet` (34,826 parameters, Adam, batch 128, 15 epochs): the baseline.

Run:
    tfresnet train mnist_convnet --set data=mnist --set data_dir=../shared/data
    tfresnet train mnist_convnet --set smoke=true

Same hyperparameters as https://keras.io/examples/vision/mnist_convnet/ (which reports about
99% test accuracy after 15 epochs of the full dataset).
"""

from tfresnet.training import TrainConfig
from tfresnet.training.cli import main


def get_config() -> TrainConfig:
    """The two-convolution baseline network, exactly as keras.io trains it."""
    return TrainConfig(
        model="convnet",
        dropout=0.5,
        data="mnist-sample",
        validation_split=0.1,
        optimizer="adam",
        lr=1e-3,                   # Adam's default, as keras.io leaves it
        schedule="constant",
        epochs=15,
        batch_size=128,
        seed=0,
    )


if __name__ == "__main__":
    raise SystemExit(main(get_config))
