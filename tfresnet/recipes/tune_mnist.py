"""A small-image search on MNIST: ConvNet or ResNet-20, L2, dropout, learning rate, augmentation.

Run:
    tfresnet tune tune_mnist --max-trials 6       # mnist-sample, shipped with tfresnet
    tfresnet tune tune_mnist --tuner bayesian --max-trials 20 \\
        --set data=mnist --set data_dir=../shared/data --set steps_per_epoch=none --set epochs=6
    tfresnet tune tune_mnist --workers 2 --run-dir runs/mnist-search   # 2 local workers
    tfresnet tune tune_mnist --set smoke=true --max-trials 2           # seconds, for tests

Measured on a shared 2-core CPU (no GPU), `--max-trials 6`: 90 s wall in all (5 ConvNet trials of
4-7 s, 1 ResNet-20 trial of 46 s, SavedModel export); best trial a ConvNet at 0.828 validation
accuracy, 0.836 on the 1,000 test digits. Each trial trains 2 epochs of at most 20 batches: enough
to rank the candidates, not to reach final accuracy: train the winner longer with a recipe that
takes the best trial's values (RUN_DIR/best/config.json).
"""

from tfresnet.training import TrainConfig


def get_config() -> TrainConfig:
    """The search space is the `tune` section; the other fields are every trial's defaults."""
    return TrainConfig(
        model="convnet",
        data="mnist-sample",
        validation_split=0.1,       # trials are scored on validation accuracy, the best model on test
        optimizer="adam",
        lr=1e-3,
        schedule="constant",
        epochs=2,
        steps_per_epoch=20,         # caps a ResNet-20 trial near a minute on 2 CPU cores
        batch_size=128,
        seed=0,
        tune={
            "model": ["convnet", "resnet20"],
            "l2": {"min": 1e-5, "max": 1e-3, "sampling": "log"},
            "dropout": {"min": 0.0, "max": 0.5},
            "lr": {"min": 3e-4, "max": 3e-3, "sampling": "log"},
            "augment": ["none", "mnist-shift"],
            "batch_size": [64, 128],
        },
    )
