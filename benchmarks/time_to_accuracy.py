"""The `time-to-accuracy` suite of `tfresnet bench` as a script (see tfresnet/bench/time_to_accuracy.py).

    python benchmarks/time_to_accuracy.py [--smoke] [--out-dir DIR] [suite options of `tfresnet bench --help`]
"""

from tfresnet.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(suite="time-to-accuracy"))
