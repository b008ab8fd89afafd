"""Nielsen's MNIST experiments as data: chapter 6's ladder of networks and chapter 5's depths.

Source: Michael Nielsen, "Neural Networks and Deep Learning" (2015), chapter 6 ("Deep
learning"), the ladder from 97.80% to 99.67% test accuracy trained with network3.py, and
chapter 5 ("Why are deep neural networks hard to train?"), sigmoid networks [784, 30 x k, 10]
trained with network2.py. Both train on the first 50,000 MNIST training digits, validate on the
last 10,000 (``data_args={"holdout": "last"}``) and use plain mini-batch SGD (no momentum) on
the mean cross-entropy of a mini-batch.

Chapter 6 reports the test accuracy at the epoch of best validation accuracy: the trainer's
final evaluation restores the best-``val_accuracy`` checkpoint, which is the same thing.

L2: the coefficient Keras adds as ``l2 * sum(w**2)`` to the mean mini-batch loss is derived
from the book's lambda, and the two programs differ:

- network2.py (chapter 5) shrinks every weight by ``1 - eta * lambda / n`` per step, i.e. the
  mean loss plus ``lambda / (2 n) * sum(w**2)``: ``l2 = lambda / (2 n)``.
- network3.py (chapter 6) adds ``0.5 * lambda * sum(w**2) / num_training_batches`` to the mean
  mini-batch loss, with ``num_training_batches = n / batch``: ``l2 = lambda * batch / (2 n)``,
  ``batch`` times network2's (n counts the expanded 250,000 digits where the data is expanded).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tfresnet.checks import number
from tfresnet.training.config import TrainConfig

__all__ = ["Rung", "RUNGS", "CH5_DEPTHS", "CH5_BOOK", "CH5_GRADIENT_NORMS", "rung_config",
           "ch5_config", "recipe", "training_size"]

BOOK_BATCH = 10  # both programs' mini-batch
TRAIN_DIGITS = 50_000  # the first 50,000 of MNIST's 60,000 training digits
EXPANSION_FACTOR = {None: 1, "shift1": 5}  # tfresnet.data.augment.EXPANSIONS: originals + 4 shifts


@dataclasses.dataclass(frozen=True)
class Rung:
    """One rung of chapter 6's ladder.

    Attributes:
        model: registry name (`tfresnet.models.mlp.MLP_CONFIGS`).
        epochs: epochs of SGD.
        lr: the book's eta.
        l2_lambda: the book's lambda (network3.py's convention; see the module docstring).
        expand: None, or the training-set expansion (``"shift1"``: 250,000 digits).
        dropout: network3's softmax layer's p_dropout (the hidden layers' is in the model row).
        book: test accuracy in percent the book reports.
        votes: networks in the ensemble (rung 7 votes 5 rung-6 networks).
        vote_of: the rung whose networks vote (rung 7's are rung 6's: its voters of seed s are
            rung 6's runs of seeds 5s..5s+4, so training rung 6 over five seeds trains them).
        batch_size: mini-batch size; 10 throughout the book.
    """

    model: str
    epochs: int
    lr: float
    l2_lambda: float
    expand: str | None
    dropout: float
    book: float
    votes: int = 1
    vote_of: int | None = None
    batch_size: int = BOOK_BATCH


# rung -> Rung: chapter 6's sequence, each row changing what the book's text changes.
RUNGS = {
    1: Rung("nielsen_fc100", 60, 0.1, 0.0, None, 0.0, 97.80),
    2: Rung("nielsen_conv1_sigmoid", 60, 0.1, 0.0, None, 0.0, 98.78),
    3: Rung("nielsen_conv2_sigmoid", 60, 0.1, 0.0, None, 0.0, 99.06),
    4: Rung("nielsen_conv2_relu", 60, 0.03, 0.1, None, 0.0, 99.23),
    5: Rung("nielsen_conv2_relu", 60, 0.03, 0.1, "shift1", 0.0, 99.37),
    6: Rung("nielsen_conv2_fc1000x2", 40, 0.03, 0.0, "shift1", 0.5, 99.60),
    7: Rung("nielsen_conv2_fc1000x2", 40, 0.03, 0.0, "shift1", 0.5, 99.67, votes=5, vote_of=6),
}

# Chapter 5: [784, 30 x k, 10] sigmoid networks, 30 epochs, mini-batch 10, eta 0.1, lambda 5.0.
CH5_DEPTHS = (1, 2, 3, 4)
CH5_BOOK = {1: 96.48, 2: 96.90, 3: 96.57, 4: 96.53}  # best validation accuracy, percent
# Norm of each hidden layer's bias gradient (input side first) over 1,000 training digits, k = 4,
# at initialisation.
CH5_GRADIENT_NORMS = (0.003, 0.017, 0.070, 0.285)


def training_size(expand: str | None) -> int:
    """Digits in one epoch of Nielsen's training set, expanded or not."""
    return TRAIN_DIGITS * EXPANSION_FACTOR[expand]


def _nielsen_base(expand: str | None = None, **fields) -> TrainConfig:
    return TrainConfig(
        data="mnist",
        # The last 10,000 in file order, as the book's loader; the expansion (if any) shifts the
        # 50,000 training digits only.
        data_args={"holdout": "last", **({"expand": expand} if expand else {})},
        validation_split=1 / 6,       # 10,000 of the 60,000 (TrainConfig takes a fraction)
        optimizer="sgd",
        momentum=0.0,                  # the book's SGD has none
        schedule="constant",
        cache=True,
        tensorboard=False,
        export=False,
        jit_compile=False,             # per-step work at batch 10 is too small to pay for XLA
        **fields,
    )


def _check_batch(batch_size: int | None) -> int:
    if batch_size is None:
        return BOOK_BATCH
    return number(batch_size, "batch_size", integer=True, unit=f" (the book's is {BOOK_BATCH})")


def rung_config(rung: int, batch_size: int | None = None) -> TrainConfig:
    """The `TrainConfig` of one chapter 6 rung (a rung-7 config trains one of its voters).

    Args:
        rung: a key of `RUNGS`.
        batch_size: None for the book's mini-batch of 10; else the faster equivalent by the
            linear scaling rule (Goyal et al. 2017): eta times ``batch_size / 10``, and the L2
            coefficient kept at the book's batch so the weight decay per epoch is the book's.

    Raises:
        ValueError: for a rung not in `RUNGS` or a bad `batch_size`.
    """
    if rung not in RUNGS:
        raise ValueError(f"Unknown rung {rung!r}; Nielsen's ladder has rungs {sorted(RUNGS)}.")
    row = RUNGS[rung]
    batch = _check_batch(batch_size)
    return _nielsen_base(
        row.expand,
        model=row.model,
        lr=row.lr * batch / row.batch_size,
        # network3.py's L2: lambda * batch / (2 n) per unit of mean loss (module docstring), at
        # the book's batch: with eta scaled by k, k-times-fewer steps then decay as much per epoch.
        l2=row.l2_lambda * row.batch_size / (2 * training_size(row.expand)),
        dropout=row.dropout,
        epochs=row.epochs,
        batch_size=batch,
    )


def ch5_config(depth: int = 4, batch_size: int | None = None, output: str = "sigmoid") -> TrainConfig:
    """Chapter 5's [784, 30 x depth, 10] sigmoid network as the book trains it.

    Args:
        depth: hidden layers of 30, a member of `CH5_DEPTHS`.
        batch_size: as for `rung_config` (network2's L2 does not depend on the batch).
        output: ``"sigmoid"``, network2's sigmoid output units with the cross-entropy cost summed
            over them, or ``"softmax"`` with log-likelihood (`TrainConfig.output`).

    Raises:
        ValueError: for a depth not in `CH5_DEPTHS`.
    """
    if depth not in CH5_DEPTHS:
        raise ValueError(f"Unknown depth {depth!r}; chapter 5 trains depths {list(CH5_DEPTHS)}.")
    batch = _check_batch(batch_size)
    l2_lambda = 5.0
    return _nielsen_base(
        model=f"sigmoid_mlp_30x{depth}",
        output=output,
        lr=0.1 * batch / BOOK_BATCH,
        l2=l2_lambda / (2 * TRAIN_DIGITS),  # network2.py's L2: lambda / (2 n)
        epochs=30,
        batch_size=batch,
    )


def recipe(build: Callable[..., TrainConfig], *args) -> Callable[[], TrainConfig]:
    """A recipe's ``get_config`` for one row: ``get_config = recipe(rung_config, 3)``."""

    def get_config() -> TrainConfig:
        return build(*args)

    get_config.__doc__ = f"{build.__name__}{args}"
    return get_config
