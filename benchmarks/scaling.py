"""The `scaling` suite of `tfresnet bench` as a script (see tfresnet/bench/scaling.py).

    python benchmarks/scaling.py --data-dir ../shared/data   # ~15 minutes on 2 CPU cores
    python benchmarks/scaling.py --smoke                     # seconds
"""

from tfresnet.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main(suite="scaling"))
