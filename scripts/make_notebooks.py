"""Writes every notebook in notebooks/ (without outputs) from its cells in scripts/notebooks/.

Keeping the cells in Python files keeps the notebooks reviewable in diffs; rerun after editing:
    python scripts/make_notebooks.py            # all notebooks
    python scripts/make_notebooks.py 02         # those whose name starts with 02

The test suite runs each notebook top to bottom in smoke size (tests/test_notebooks.py), so every
notebook reads ``TFRESNET_SMOKE`` and ``TFRESNET_RUN_DIR`` from the environment.
"""

import runpy
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook

ROOT = Path(__file__).resolve().parents[1]
SOURCES = Path(__file__).resolve().parent / "notebooks"


def main(prefixes: list[str]) -> None:
    for source in sorted(SOURCES.glob("*.py")):
        if prefixes and not any(source.stem.startswith(p) for p in prefixes):
            continue
        cells = runpy.run_path(str(source))["CELLS"]
        notebook = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        path = ROOT / "notebooks" / f"{source.stem}.ipynb"
        nbformat.write(notebook, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
