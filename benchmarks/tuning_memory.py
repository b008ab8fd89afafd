"""Resident memory across the trials of one search: does RAM stay flat from trial to trial?

KerasTuner searches are known to grow in memory trial after trial until the process dies, as
every trial builds a new model in the same process. `tfresnet.tuning` clears the Keras session
and collects garbage after each trial. This benchmark runs a random search of at least 30 small
trials (the MNIST ConvNet on the shipped MNIST sample, 1 epoch of a few batches, TensorBoard and
HParams logging on, as in a real search) in one process, and prints the process' resident
memory (``VmRSS`` from /proc/self/status) after each trial.

    python benchmarks/tuning_memory.py                     # 30 trials, ~2 minutes on 2 CPU cores
    python benchmarks/tuning_memory.py --trials 40 --no-clear   # without tfresnet's clearing

Requirement: the RSS after trial 30 is within 15% of the RSS after trial 5 (trials 1-5 warm
up: TensorFlow's kernels, tf.data's cache of the sample, the first traces). Writes JSON (default
benchmarks/results/tuning_memory.json) and prints a table. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time

# Before TensorFlow is imported: its C++ start-up logging would clutter the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from tfresnet.training.config import TrainConfig
from tfresnet.tuning import tune

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "tuning_memory.json")
WARM_UP_TRIAL = 5
CHECK_TRIAL = 30
TOLERANCE = 0.15


def rss_mib() -> float:
    """This process' resident set size in MiB (psutil is not a dependency)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("VmRSS not found in /proc/self/status")


def config(steps: int, tensorboard: bool) -> TrainConfig:
    """The search: a small ConvNet trial, 1 epoch of `steps` batches, three regularisation knobs."""
    return TrainConfig(
        model="convnet", data="mnist-sample", epochs=1, steps_per_epoch=steps, batch_size=32,
        jit_compile=False, tensorboard=tensorboard, verbose=0, export=False,
        tune={
            "lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
            "l2": {"min": 1e-6, "max": 1e-3, "sampling": "log"},
            "dropout": {"min": 0.0, "max": 0.5},
        },
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=CHECK_TRIAL, help="trials to run (>= 30)")
    parser.add_argument("--steps", type=int, default=5, help="training batches per trial")
    parser.add_argument("--no-clear", action="store_true",
                        help="skip tfresnet's clear_session + gc.collect after each trial (KerasTuner "
                             "still clears before each build)")
    parser.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard/HParams logging")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.trials < CHECK_TRIAL:
        parser.error(f"--trials must be >= {CHECK_TRIAL}")

    samples: list[dict] = []
    start = time.perf_counter()

    def on_trial_end(trial):
        samples.append({"trial": len(samples) + 1, "trial_id": trial.trial_id, "status": trial.status,
                        "rss_mib": round(rss_mib(), 1), "seconds": round(time.perf_counter() - start, 1)})
        s = samples[-1]
        print(f"trial {s['trial']:>3}  {s['status']:<9}  RSS {s['rss_mib']:8.1f} MiB  {s['seconds']:7.1f} s",
              flush=True)

    rss_start = rss_mib()
    with tempfile.TemporaryDirectory() as run_dir:
        result = tune(config(args.steps, not args.no_tensorboard), run_dir, tuner="random",
                      max_trials=args.trials, recipe="tuning_memory",
                      clear_between_trials=not args.no_clear, on_trial_end=on_trial_end)
    by_trial = {s["trial"]: s["rss_mib"] for s in samples}
    warm, check = by_trial[WARM_UP_TRIAL], by_trial[CHECK_TRIAL]
    growth = (check - warm) / warm
    summary = {
        "benchmark": "tuning_memory",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "tensorflow": tf.__version__, "keras": keras.__version__, "cpus": os.cpu_count()},
        "settings": {"trials": args.trials, "steps": args.steps, "clear_between_trials": not args.no_clear,
                     "tensorboard": not args.no_tensorboard, "model": "convnet", "data": "mnist-sample"},
        "rss_before_search_mib": round(rss_start, 1),
        f"rss_after_trial_{WARM_UP_TRIAL}_mib": warm,
        f"rss_after_trial_{CHECK_TRIAL}_mib": check,
        "growth": round(growth, 4),
        "tolerance": TOLERANCE,
        "passed": abs(growth) <= TOLERANCE,
        "completed_trials": int((result.results["status"] == "COMPLETED").sum()),
        "seconds": round(time.perf_counter() - start, 1),
        "per_trial": samples,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(f"\nRSS after trial {WARM_UP_TRIAL}: {warm:.1f} MiB; after trial {CHECK_TRIAL}: {check:.1f} MiB; "
          f"growth {100 * growth:+.1f}% (limit +-{100 * TOLERANCE:.0f}%): "
          f"{'PASS' if summary['passed'] else 'FAIL'}. Wrote {args.out}")
    return summary


if __name__ == "__main__":
    raise SystemExit(0 if main()["passed"] else 1)
