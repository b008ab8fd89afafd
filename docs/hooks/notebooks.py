"""MkDocs hook: render the notebooks with their outputs, executed smoke-sized like the tests run them.

The notebooks are committed without outputs. With ``TFRESNET_DOCS_EXECUTE=1`` (what ``make docs``
and ``make docs-serve`` set), each one is executed once as `tests/test_notebooks.py` executes it
(``TFRESNET_SMOKE=1``, its own fresh run directory, the shared data folder) into
``build/docs-notebooks/``, and the site renders that copy; an executed copy newer than its
notebook is reused. Without it (``make test``'s strict build), the notebooks render as committed:
executing all four takes minutes, and the test suite already runs them.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.notebooks")
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "docs-notebooks"


def _execute(source: Path, target: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TFRESNET_SMOKE": "1", "TFRESNET_RUN_DIR": os.path.join(tmp, "run"),
               "TF_CPP_MIN_LOG_LEVEL": "3", "TFRESNET_RECIPES": str(ROOT / "recipes"),
               "TFRESNET_DATA_DIR": os.environ.get("TFRESNET_DATA_DIR", str(ROOT.parent / "shared" / "data"))}
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)  # the kernel inherits this process's environment
        try:
            NotebookClient(notebook, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": tmp}}).execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def on_files(files, config):
    """Point each notebook page at its executed copy, executing it first where needed."""
    if os.environ.get("TFRESNET_DOCS_EXECUTE", "").lower() not in {"1", "true", "yes"}:
        return files
    for file in files:
        if not (file.src_uri.startswith("notebooks/") and file.src_uri.endswith(".ipynb")):
            continue
        source = Path(file.abs_src_path)
        target = OUT / source.name
        if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            log.info("executing %s (smoke-sized)", source.name)
            _execute(source, target)
        file.abs_src_path = str(target)
    return files
