"""Cells of notebooks/03_transfer_learning.ipynb (written by scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

CELLS = [
    new_markdown_cell(
        "# Transfer learning on Oxford-IIIT Pet, and where the network looks\n\n"
        "An ImageNet MobileNetV2 (alpha 0.35, keras.applications' own weights) and the "
        "`pets_transfer` recipe in two phases: a new head on the frozen backbone, then the top of "
        "the backbone fine-tuned at a 10x lower learning rate. Then per-class accuracy, the "
        "misclassified images and Grad-CAM on photos of each breed.\n\n"
        "It runs offline: the ImageNet files are read from `$TFRESNET_WEIGHTS_DIR` (here "
        "`../shared/data/imagenet_weights`, the files exactly as keras.applications downloads "
        "them; with network access `weights='imagenet'` downloads them itself), and the "
        "three-breed sample in `../shared/data` stands in for the dataset, 20% of it held out "
        "as test images that choose nothing.\n\n"
        "Set `TFRESNET_SMOKE=1` to shrink training to seconds (the test suite does)."
    ),
    new_code_cell(
        "import json\n"
        "import os\n\n"
        "import numpy as np\n\n"
        "import tfresnet\n"
        "from tfresnet.inspect import gradcam, load_image, load_subject\n"
        "from tfresnet.models.pretrained import imagenet_class_names\n"
        "from tfresnet.training.cli import load_recipe, run_config\n"
        "from tfresnet.training.config import apply_overrides\n"
        "from tfresnet.training.report import show_image\n\n"
        "SMOKE = os.environ.get('TFRESNET_SMOKE') == '1'\n"
        "RUN_DIR = os.environ.get('TFRESNET_RUN_DIR', 'runs/pets_notebook')\n"
        "RECIPES = os.environ.get('TFRESNET_RECIPES', '../recipes')\n"
        "DATA = os.environ.get('TFRESNET_DATA_DIR', '../shared/data')\n"
        "PETS = os.path.join(DATA, 'oxford_iiit_pet_sample')\n"
        "os.environ.setdefault('TFRESNET_WEIGHTS_DIR', os.path.join(DATA, 'imagenet_weights'))"
    ),
    new_markdown_cell(
        "## What ImageNet already knows\n\n"
        "MobileNet v1 (alpha 0.25, 128 px) with its 1000-class ImageNet classifier, on one photo "
        "of each breed. The model knows its class names: ImageNet has five kinds of domestic cat "
        "(281-285) and 118 dog breeds, but neither Abyssinian nor Bengal."
    ),
    new_code_cell(
        "imagenet = tfresnet.create_model('mobilenetv1', alpha=0.25, input_shape=(128, 128, 3),\n"
        "                                 num_classes=1000, weights='imagenet', preprocessing='auto')\n"
        "names = imagenet_class_names()\n"
        "photos = ['Abyssinian_1.jpg', 'american_bulldog_10.jpg', 'Bengal_10.jpg']  # one per breed\n"
        "for photo in photos:\n"
        "    image = load_image(os.path.join(PETS, 'images', photo), (128, 128, 3))\n"
        "    p = np.asarray(imagenet.predict_on_batch(image[None]))[0]\n"
        "    print(photo, ', '.join(f'{names[i]} {p[i]:.2f}' for i in p.argsort()[::-1][:3]))"
    ),
    new_markdown_cell("## The recipe's two phases\n\nThe config comes from the recipe file; only "
                      "the backbone's width and the sample's place are overridden."),
    new_code_cell(
        "_, get_config = load_recipe(os.path.join(RECIPES, 'pets_transfer.py'))\n"
        "overrides = [f'smoke={SMOKE}', 'export=false', 'model_args={\"alpha\": 0.35}',\n"
        "             f'data_dir={PETS}', 'data_args.test_split=0.2']\n"
        "if SMOKE:\n"
        "    overrides.append('image_size=128')  # the 224 px file serves any size\n"
        "config = apply_overrides(get_config(), overrides)\n"
        "result = run_config(config, recipe='pets_transfer', run_dir=RUN_DIR)\n"
        "print(f\"test accuracy {result.metrics['accuracy']:.3f} on {result.metrics['examples']} held-out images\")\n"
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
