"""The `throughput` suite of `tfresnet bench` as a script (see tfresnet/bench/throughput.py).

    python benchmarks/throughput.py [--smoke] [--out-dir DIR] [suite options of `tfresnet bench --help`]
"""

from tfresnet.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(suite="throughput"))
