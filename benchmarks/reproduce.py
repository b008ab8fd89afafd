"""The `reproduce` suite of `tfresnet bench` as a script (see tfresnet/bench/reproduce.py).

    python benchmarks/reproduce.py --rungs 1,2 --seeds 3 [--smoke] [--out-dir DIR] [--data-dir DIR]
"""

from tfresnet.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(suite="reproduce"))
