"""Cells of notebooks/03_transfer_learning.ipynb (written by scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

CELLS = [
    new_markdown_cell(
        "# Transfer learning on Oxford-IIIT Pet, and where the network looks\n\n"
        "The `pets_transfer` recipe in two phases: a new head on a frozen backbone, then the top of "
        "the backbone fine-tuned at a 100x lower learning rate. Then per-class accuracy, the "
        "misclassified images and Grad-CAM on photos of each breed.\n\n"
        "Offline (as on the development machine) the backbone starts from random weights "
        "(`weights=None`) and the three-breed sample in `../shared/data` stands in for the dataset, "
        "so the figures are far below a real run: set `ONLINE = True` with network access for "
        "ImageNet weights and the full dataset through tensorflow-datasets.\n\n"
        "Set `TFRESNET_SMOKE=1` to shrink training to seconds (the test suite does)."
    ),
    new_code_cell(
        "import json\n"
        "import os\n\n"
        "import numpy as np\n\n"
        "from tfresnet.inspect import gradcam, load_image, load_subject\n"
        "from tfresnet.training.cli import load_recipe, run_config\n"
        "from tfresnet.training.config import apply_overrides\n"
        "from tfresnet.training.report import show_image\n\n"
        "ONLINE = False  # True: ImageNet weights from keras.applications, full dataset from tfds\n"
        "SMOKE = os.environ.get('TFRESNET_SMOKE') == '1'\n"
        "RUN_DIR = os.environ.get('TFRESNET_RUN_DIR', 'runs/pets_notebook')\n"
        "RECIPES = os.environ.get('TFRESNET_RECIPES', '../recipes')\n"
        "PETS = os.path.join(os.environ.get('TFRESNET_DATA_DIR', '../shared/data'), 'oxford_iiit_pet_sample')"
    ),
    new_markdown_cell("## The recipe's two phases\n\nThe config comes from the recipe file; only "
                      "what differs offline is overridden."),
    new_code_cell(
        "_, get_config = load_recipe(os.path.join(RECIPES, 'pets_transfer.py'))\n"
        "overrides = [f'smoke={SMOKE}', 'export=false']\n"
        "if not ONLINE:\n"
        "    overrides += ['weights=none', f'data_dir={PETS}', 'epochs=3', 'fine_tune_epochs=2', 'image_size=128']\n"
        "config = apply_overrides(get_config(), overrides)\n"
        "result = run_config(config, recipe='pets_transfer', run_dir=RUN_DIR)\n"
        "result.history"
    ),
    new_code_cell("show_image(os.path.join(RUN_DIR, 'learning_curves.png'))"),
    new_markdown_cell("## Per-class accuracy and the misclassified images"),
    new_code_cell(
        "metrics = json.load(open(os.path.join(RUN_DIR, 'metrics.json')))\n"
        "{name: acc for name, acc in zip(metrics['class_names'], metrics['per_class_accuracy']) if acc is not None}"
    ),
    new_code_cell(
        "if os.path.exists(os.path.join(RUN_DIR, 'misclassified.png')):\n"
        "    show_image(os.path.join(RUN_DIR, 'misclassified.png'))"
    ),
    new_markdown_cell(
        "## Grad-CAM: where the network looks\n\n"
        "Grad-CAM (Selvaraju et al. 2017) weighs the last feature maps by the gradient of the "
        "predicted class's logit; saliency and SmoothGrad show the input gradient itself."
    ),
    new_code_cell(
        "subject = load_subject(RUN_DIR)\n"
        "photos = ['Abyssinian_1.jpg', 'american_bulldog_10.jpg', 'Bengal_10.jpg']  # one per breed\n"
        "for photo in photos:\n"
        "    image = load_image(os.path.join(PETS, 'images', photo), subject.image_shape)\n"
        "    probabilities = np.asarray(subject.model.predict_on_batch(image[None]))[0]\n"
        "    class_id = int(probabilities.argmax())\n"
        "    heatmap = gradcam.grad_cam(subject.model, image, class_id)\n"
        "    path = gradcam.plot_grad_cam(\n"
        "        image, heatmap, os.path.join(RUN_DIR, f'gradcam-{photo[:-4]}.png'),\n"
        "        saliency=gradcam.saliency(subject.model, image, class_id),\n"
        "        smoothgrad=gradcam.smoothgrad(subject.model, image, class_id, samples=8 if SMOKE else 25),\n"
        "        title=f'{photo}: {subject.class_names[class_id]} ({probabilities[class_id]:.2f})')\n"
        "    show_image(path)"
    ),
]
