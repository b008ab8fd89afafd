"""Rebuild every registered model and check, or rewrite, the table `tfresnet list-models` reads.

    python scripts/model_table.py --check    # make model-table-check; exit 1 listing each difference
    python scripts/model_table.py --write    # after a builder changed: rewrite tfresnet/model_table.json

Building all of them takes about 3.5 minutes on two shared CPU cores (the 224-pixel ResNets and
VGGs most of it), which is why `make test` checks only a sample (tests/test_model_table.py).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="list every difference; exit 1 if any")
    action.add_argument("--write", action="store_true", help="rewrite the table from the built models")
    args = parser.parse_args(argv)

    from tfresnet.model_table import TABLE_FILE, differences, read_table, write_table
    from tfresnet.models.profile import build_table

    built = build_table()
    if args.write:
        write_table(built)
        print(f"wrote {len(built)} models to {TABLE_FILE}")
        return 0
    found = differences(built, read_table())
    for line in found:
        print(line)
    print(f"{len(built)} models built; {len(found)} differences from {TABLE_FILE}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
