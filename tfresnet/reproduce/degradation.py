"""He et al. 2015 ("Deep Residual Learning for Image Recognition"), figure 6: degradation.

Plain networks of 20 and 56 layers against ResNets of the same depths, trained alike: the deeper
plain network has *higher* training error than the shallower one, the deeper ResNet lower.
The paper trains on CIFAR-10 (section 4.2): SGD, momentum 0.9, weight decay 1e-4, mini-batch
128, lr 0.1 divided by 10 at 32k and 48k iterations, stopped at 64k (45k/5k train/val split).
tfresnet has no CIFAR-10 loader yet, so the study runs on MNIST, with the paper's optimiser and
the iteration budget turned into epochs of the 50,000 training digits.
"""

from __future__ import annotations

from tfresnet.training.config import TrainConfig

__all__ = ["DEGRADATION_MODELS", "degradation_config"]

# The four curves of figure 6 (left: plain; right: residual), shallow first.
DEGRADATION_MODELS = ("plain20", "plain56", "resnet20", "resnet56")

BATCH_SIZE = 128
STEPS_PER_EPOCH = 50_000 // BATCH_SIZE + 1  # 391: the last, partial batch is kept
# The paper's milestones in iterations, as epochs here: 32k/391 = 82, 48k/391 = 123, 64k/391 = 164.
_MILESTONES = tuple(round(steps / STEPS_PER_EPOCH) for steps in (32_000, 48_000, 64_000))


def degradation_config(model: str = "plain20") -> TrainConfig:
    """One of figure 6's four networks, trained as the paper trains them (on MNIST).

    Raises:
        ValueError: for a model not in `DEGRADATION_MODELS`.
    """
    if model not in DEGRADATION_MODELS:
        raise ValueError(f"Unknown model {model!r}; figure 6 compares {list(DEGRADATION_MODELS)}.")
    return TrainConfig(
        model=model,
        data="mnist",
        data_args={"holdout": "last"},
        validation_split=1 / 6,       # 10,000 of the 60,000 (TrainConfig takes a fraction)
        optimizer="sgd",
        momentum=0.9,
        lr=0.1,
        l2=1e-4 / 2,  # weight decay 1e-4 as in Caffe: decay * w per step is the gradient of decay/2 * w^2
        schedule="step",
        step_epochs=list(_MILESTONES[:2]),
        step_gamma=0.1,
        epochs=_MILESTONES[2],
        batch_size=BATCH_SIZE,
        tensorboard=False,
        export=False,
    )
