"""Cells of notebooks/01_quickstart.ipynb (written by scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

CELLS = [
    new_markdown_cell(
        "# tfresnet quickstart\n\n"
        "Build a model from the registry, train it with a recipe config, look at the run, and "
        "export a SavedModel that takes raw images.\n\n"
        "Set `TFRESNET_SMOKE=1` to shrink training to seconds (the test suite does)."
    ),
    new_code_cell(
        "import os\n\n"
        "import tfresnet\n"
        "from tfresnet.export import export_run, load_exported\n"
        "from tfresnet.training import TrainConfig\n"
        "from tfresnet.training.cli import run_config\n\n"
        "SMOKE = os.environ.get('TFRESNET_SMOKE') == '1'\n"
        "RUN_DIR = os.environ.get('TFRESNET_RUN_DIR', 'runs/quickstart')\n"
        "tfresnet.list_models('resnet2')"
    ),
    new_markdown_cell("## A model from the registry\n\nEvery family takes the same arguments; "
                      "`preprocessing='auto'` puts the model's input scaling inside it."),
    new_code_cell(
        "model = tfresnet.create_model('resnet20', input_shape=(28, 28, 1), num_classes=10,\n"
        "                              l2=1e-4, preprocessing='auto')\n"
        "print(f'{model.name}: {model.count_params():,} parameters')"
    ),
    new_markdown_cell("## Train\n\nA config is data; the same one a recipe file returns."),
    new_code_cell(
        "config = TrainConfig(model='resnet20', data='mnist-sample', epochs=3, lr=3e-3,\n"
        "                     schedule='onecycle', l2=1e-4, smoke=SMOKE, export=False)\n"
        "result = run_config(config, recipe='quickstart', run_dir=RUN_DIR)\n"
        "result.metrics['accuracy']"
    ),
    new_markdown_cell("## Look at the run\n\nThe run directory holds the config, history, "
                      "metrics and plots."),
    new_code_cell(
        "print(sorted(os.listdir(result.run_dir)))\n"
        "result.history"
    ),
    new_code_cell(
        "from tfresnet.training.report import show_image\n\n"
        "show_image(os.path.join(result.run_dir, 'learning_curves.png'))"
    ),
    new_markdown_cell("## Export\n\nThe SavedModel takes a batch of raw uint8 images and "
                      "returns probabilities and the top class."),
    new_code_cell(
        "export_dir = export_run(result.run_dir)\n"
        "predictor = load_exported(export_dir)\n"
        "import numpy as np\n\n"
        "digits = np.zeros((2, 28, 28, 1), dtype='uint8')\n"
        "predictor.predict(digits)['class_id']"
    ),
]
