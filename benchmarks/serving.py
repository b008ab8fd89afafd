"""The `serving` suite of `tfresnet bench` as a script (see tfresnet/bench/serving.py).

    python benchmarks/serving.py [--smoke] [--out-dir DIR] [suite options of `tfresnet bench --help`]
"""

from tfresnet.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(suite="serving"))
