"""Full MNIST to 99% test accuracy in one epoch: tuomaso/train_mnist_fast's narrow net, on a CPU.

Run:
    tfresnet train mnist_fast --set data_dir=../shared/data
    tfresnet train mnist_fast --set smoke=true   # seconds, for tests
    tfresnet bench --suite time-to-accuracy --data-dir ../shared/data --seeds 3 --ablation

Settings chosen on the last 10,000 of the 60,000 training digits held out (`--set
validation_split=0.1666667 --set epochs=1`), never on the test digits: accuracy on those 10,000
after one epoch of the other 50,000, one run each (seed 0 unless said; seed to seed they differ
by ~0.2 points), on the 2-core CPU while other jobs shared it:
- this recipe 99.13% (seed 1: 98.96%); batch 256 at the same lr 98.96%; label smoothing 0.2
  99.12%; batch norm after each convolution (momentum 0.9) 99.10%; `ema=0.95` 99.08%;
- at batch 256: `onecycle` 98.98% against `triangular`'s 98.96%; two epochs 98.66% after the
  first, 99.32% after the second;
- at batch 256 with batch norm and `onecycle`: 98.87%; Adam's default betas 98.76%; lr 3e-3
  98.69%, 2e-2 98.91%; no label smoothing 98.85%; `ema=0.99` 96.8% (the batch statistics
  belong to the raw weights, not their average).
`ABLATIONS` takes each kept choice back (the bench's ``--ablation``). Test accuracy and times: see
README's time-to-accuracy table (measured on a quiet machine).
"""

from tfresnet.training import TrainConfig
from tfresnet.training.cli import main

BATCH_SIZE = 128

# Each kept choice taken back, as `--set` overrides: the time-to-accuracy bench's ablation rows.
ABLATIONS = {
    "betas (0.7, 0.9): Adam's default (0.9, 0.999) instead": ["adam_beta_1=0.9", "adam_beta_2=0.999"],
    "triangular schedule: onecycle instead": ["schedule=onecycle"],
    "label smoothing 0.1": ["label_smoothing=0.0"],
    "batch 128: 256 instead (lr scaled)": ["batch_size=256", "lr=0.02"],
    "convnet_narrow: convnet_fast instead": ["model=convnet_fast"],
}


def get_config() -> TrainConfig:
    """The narrow 5x5-first convnet, Adam with short-memory betas, one triangular epoch."""
    return TrainConfig(
        model="convnet_narrow",    # 24 and 32 filters: 1.2M multiply-adds an image (convnet_fast 3.0M)
        dropout=0.0,               # one epoch is too short to overfit
        data="mnist",
        validation_split=0.0,      # all 60,000 digits train; no validation pass
        cache=True,                # the decoded digits (47 MB) stay in memory
        optimizer="adam",
        adam_beta_1=0.7,           # tuomaso's betas: a shorter memory follows a fast-moving lr
        adam_beta_2=0.9,
        lr=1e-2 * BATCH_SIZE / 128,  # 3e-3 and 2e-2 at batch 256 were no better; linear scaling rule
        schedule="triangular",     # up to the peak over 30% of the steps, then linear to 0 at the last
        label_smoothing=0.1,
        epochs=1,
        batch_size=BATCH_SIZE,     # keras.io's 128: better than 256 after one epoch (99.13% vs 98.96%)
        jit_compile=False,         # XLA made keras.io's convnet 4x slower on this CPU
        seed=0,
    )


if __name__ == "__main__":
    raise SystemExit(main(get_config))
