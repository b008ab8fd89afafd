"""He et al. 2015 ("Deep Residual Learning for Image Recognition"), figure 6: degradation.

Plain networks of 20 and 56 layers against ResNets of the same depths, trained alike: the deeper
plain network has *higher* training error than the shallower one, the deeper ResNet lower.
The paper trains on CIFAR-10 (section 4.2): SGD, momentum 0.9, weight decay 1e-4, mini-batch
128, lr 0.1 divided by 10 at 32k and 48k iterations, stopped at 64k (45k/5k train/val split).
tfresnet has no CIFAR-10 loader yet, so the study runs on MNIST, with the paper's optimiser and
the iteration budget turned into epochs of the 50,000 training digits. MNIST is too easy for the
paper's widths at a budget a CPU affords (the two ResNets tie); `BUDGETS` says what each row
changes to make it harder, and what it measured.
"""

from __future__ import annotations

import dataclasses

from tfresnet.training.config import TrainConfig

__all__ = ["DEGRADATION_MODELS", "BUDGETS", "Budget", "degradation_config"]

# The four curves of figure 6 (left: plain; right: residual), shallow first.
DEGRADATION_MODELS = ("plain20", "plain56", "resnet20", "resnet56")

BATCH_SIZE = 128
TRAIN_DIGITS = 50_000


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long the four networks train; the lr is divided by 10 at 1/2 and 3/4 of it, as the paper's
    32k and 48k of 64k iterations.

    Attributes:
        iterations: optimizer steps in all.
        steps_per_epoch: steps between two points of the curves; None for whole passes over the
            50,000 training digits (391 steps, the last batch partial).
        augment: an augmentation preset (`tfresnet.data.augment.AUGMENT_PRESETS`) that makes the
            task harder; the paper's CIFAR-10 runs augment too (4-pixel shifts, flips).
        warmup_epochs: a linear lr warm-up, in epochs of `steps_per_epoch` steps.
        width: filters of the first stage (`SmallResNet`'s `width`; the paper's 16). The four
            networks share it, so the comparison stays one of depth.
    """

    iterations: int
    steps_per_epoch: int | None = None
    augment: str = "none"
    warmup_epochs: float = 0.0
    width: int = 16

    def epochs(self) -> int:
        """The budget's iterations in epochs of the training digits, rounded."""
        return round(self.iterations / (self.steps_per_epoch or -(-TRAIN_DIGITS // BATCH_SIZE)))


BUDGETS = {
    "paper": Budget(64_000),                    # 164 epochs; hours per network on a GPU-less machine
    # What a 2-core CPU affords (plain56 and resnet56 take about 1 s a step there): 1,200 steps,
    # a point every 100, each of a fresh random 12,800 of the 50,000 digits.
    "cpu": Budget(1_200, steps_per_epoch=100),
    # The same 1,200 steps on a harder task, as the issue asks where MNIST is too easy for the
    # residual half: at "cpu" resnet20 ends at 0.5% training error, a floor that leaves a deeper
    # network no room to do better. Flips, rotations of up to 18 degrees, zoom, shifts and
    # contrast keep the training error of both networks well above it.
    "cpu-augmented": Budget(1_200, steps_per_epoch=100, augment="standard"),
    # There resnet56 still lost to resnet20 (training error 3.7% against 2.0%), having spent its
    # first 100 steps at 80% error: lr 0.1 is too large for it to start, as the paper found for
    # its 110 layers (which it warmed up at 0.01 for about 400 iterations). The paper's remedy,
    # here a 100-step linear warm-up, for all four networks alike.
    "cpu-augmented-warmup": Budget(1_200, steps_per_epoch=100, augment="standard", warmup_epochs=1),
    # There the two ResNets tied (1.78% and 1.80%) while plain56 stayed 6.6 times worse than
    # plain20: twice the steps, to see whether depth turns into lower training error.
    "cpu-long": Budget(2_400, steps_per_epoch=100, augment="standard", warmup_epochs=1),
    # There they tied again (1.31% and 1.38%). Our reading: at the paper's width augmented MNIST
    # leaves resnet20 little to gain from 36 more layers within what 2 cores afford. A quarter of
    # the width (4, 8 and 16 filters; 17,598 and 55,230 parameters, where CIFAR-10's resnet20 has 270,810)
    # makes the task hard for the networks at the budget of "cpu-augmented-warmup". There both
    # halves of figure 6 showed (seed 0): plain56 3.0 times worse than plain20 (12.85% against
    # 4.23%), resnet56 better than resnet20 (2.65% against 3.27%, lower at each of the 12 points);
    # seed 1 alike (15.45% / 4.00%, 2.93% / 3.78%).
    "cpu-narrow": Budget(1_200, steps_per_epoch=100, augment="standard", warmup_epochs=1, width=4),
}


def degradation_config(model: str = "plain20", budget: str = "paper") -> TrainConfig:
    """One of figure 6's four networks, trained as the paper trains them (on MNIST).

    Raises:
        ValueError: for a model not in `DEGRADATION_MODELS` or a budget not in `BUDGETS`.
    """
    if model not in DEGRADATION_MODELS:
        raise ValueError(f"Unknown model {model!r}; figure 6 compares {list(DEGRADATION_MODELS)}.")
    if budget not in BUDGETS:
        raise ValueError(f"Unknown budget {budget!r}; choose from {list(BUDGETS)}.")
    row = BUDGETS[budget]
    epochs = row.epochs()
    return TrainConfig(
        model=model,
        data="mnist",
        data_args={"holdout": "last"},
        model_args={"width": row.width},
        augment=row.augment,
        warmup_epochs=row.warmup_epochs,
        validation_split=1 / 6,       # 10,000 of the 60,000 (TrainConfig takes a fraction)
        optimizer="sgd",
        momentum=0.9,
        lr=0.1,
        l2=1e-4 / 2,  # weight decay 1e-4 as in Caffe: decay * w per step is the gradient of decay/2 * w^2
        schedule="step",
        step_epochs=[round(epochs / 2), round(epochs * 3 / 4)],  # 32k and 48k of 64k
        step_gamma=0.1,
        epochs=epochs,
        steps_per_epoch=row.steps_per_epoch,
        batch_size=BATCH_SIZE,
        tensorboard=False,
        export=False,
    )
