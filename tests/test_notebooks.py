"""The notebooks run top to bottom (smoke-sized) and are committed without outputs.

Each notebook is written by `scripts/make_notebooks.py` from its cells in `scripts/notebooks/`;
`EXPECTED` lists the files a smoke run of each must leave under its run directory.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import SHARED_DATA_DIR

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# notebook -> files (relative to TFRESNET_RUN_DIR) a smoke run must write
EXPECTED = {
    "01_quickstart.ipynb": ["export/saved_model/saved_model.pb", "learning_curves.png"],
    "02_vanishing_gradients.ipynb": ["sigmoid_nets.png", "plain_vs_resnet.png",
                                     "plain20/gradient_flow.csv", "plain20/gradient_flow.png",
                                     "plain20/gradient_flow_layers.png"],
    "03_transfer_learning.ipynb": ["learning_curves.png", "metrics.json", "gradcam-Abyssinian_1.png"],
    "04_inside_a_convnet.ipynb": ["digits/features", "digits/ideal.png", "digits/attack.png",
                                  "digits/robustness.png", "pets/dog_to_cat.png", "pets/ideal.png"],
}
# notebooks that read ../shared/data (skipped with the reason where it is absent)
NEEDS_SHARED_DATA = {"03_transfer_learning.ipynb", "04_inside_a_convnet.ipynb"}


def test_every_notebook_has_expected_outputs_listed():
    assert sorted(EXPECTED) == [p.name for p in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{path.name} is committed with outputs"
    monkeypatch.setenv("TFRESNET_SMOKE", "1")
    monkeypatch.setenv("TFRESNET_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("TFRESNET_RECIPES", str(Path(__file__).resolve().parents[1] / "recipes"))
    if path.name in NEEDS_SHARED_DATA:
        if not SHARED_DATA_DIR.is_dir():
            pytest.skip(f"shared data folder not found at {SHARED_DATA_DIR} (../shared/data)")
        monkeypatch.setenv("TFRESNET_DATA_DIR", str(SHARED_DATA_DIR))
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    for name in EXPECTED.get(path.name, []):
        assert (tmp_path / "run" / name).exists(), name
