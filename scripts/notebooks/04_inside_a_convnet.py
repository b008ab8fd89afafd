"""Cells of notebooks/04_inside_a_convnet.ipynb (written by scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

CELLS = [
    new_markdown_cell(
        "# Inside a convnet: feature maps, ideal digits, adversarial examples\n\n"
        "A small convnet trained on MNIST, then: what its layers respond to, the digit each class "
        "likes best, a digit nudged into another class, a dog photo nudged until the network calls "
        "it a cat, and how accuracy falls as the attacker's budget grows.\n\n"
        "Set `TFRESNET_SMOKE=1` to shrink training to seconds (the test suite does)."
    ),
    new_code_cell(
        "import os\n\n"
        "import numpy as np\n\n"
        "import tfresnet.data\n"
        "from tfresnet.inspect import adversarial, features, ideal, load_image, load_subject\n"
        "from tfresnet.training import TrainConfig\n"
        "from tfresnet.training.cli import run_config\n"
        "from tfresnet.training.report import show_image\n\n"
        "SMOKE = os.environ.get('TFRESNET_SMOKE') == '1'\n"
        "RUN_DIR = os.environ.get('TFRESNET_RUN_DIR', 'runs/inside_a_convnet')\n"
        "PETS = os.path.join(os.environ.get('TFRESNET_DATA_DIR', '../shared/data'), 'oxford_iiit_pet_sample')"
    ),
    new_markdown_cell("## A digit classifier\n\n`convnet_fast` on the MNIST sample shipped with tfresnet."),
    new_code_cell(
        "digits_dir = os.path.join(RUN_DIR, 'digits')\n"
        "config = TrainConfig(model='convnet_fast', dropout=0.0, data='mnist-sample', epochs=3, lr=3e-3,\n"
        "                     schedule='onecycle', batch_size=128, export=False, tensorboard=False,\n"
        "                     steps_per_epoch=60 if SMOKE else None)  # a smoke run still has to learn\n"
        "result = run_config(config, recipe='inside_a_convnet', run_dir=digits_dir)\n"
        "digits = load_subject(digits_dir)\n"
        "test = tfresnet.data.load('mnist-sample', batch_size=100, shuffle=False, verbose=0).test\n"
        "x, y = next(iter(test))\n"
        "x, y = np.asarray(x), np.asarray(y)"
    ),
    new_markdown_cell("## Feature maps\n\nEach convolution's channels for one test digit."),
    new_code_cell(
        "maps = features.feature_maps(digits.model, x[0])\n"
        "paths = features.plot_feature_maps(maps, os.path.join(digits_dir, 'features'))\n"
        "for path in paths:\n"
        "    show_image(path)"
    ),
    new_markdown_cell(
        "## Ideal digits\n\nGradient ascent on each class's logit from noise, with total-variation "
        "and L2 penalties and random jitter; the title gives the network's probability for the class."
    ),
    new_code_cell(
        "steps = 60 if SMOKE else 200\n"
        "images, probabilities = ideal.ideal_images(digits.model, list(range(10)), steps=steps)\n"
        "show_image(ideal.plot_ideal_images(images, probabilities, os.path.join(digits_dir, 'ideal.png'),\n"
        "                                   class_names=digits.class_names))"
    ),
    new_markdown_cell(
        "## An adversarial digit\n\nProjected gradient descent (Madry et al. 2018) within 0.3 x 255 "
        "of each pixel, aimed at class 3: original | perturbation (amplified) | adversarial."
    ),
    new_code_cell(
        "x_adv = adversarial.pgd(digits.model, x[:4], y[:4], eps=0.3 * 255, target=3)\n"
        "print('max change:', np.abs(x_adv - x[:4]).max(), 'pixel range:', x_adv.min(), x_adv.max())\n"
        "show_image(adversarial.plot_adversarial(digits.model, x[:4], x_adv,\n"
        "                                        os.path.join(digits_dir, 'attack.png'),\n"
        "                                        class_names=digits.class_names))"
    ),
    new_markdown_cell("## Accuracy against the attacker's budget"),
    new_code_cell(
        "frame = adversarial.robustness(digits.model, (x, y), eps=[0, 8, 16, 25.5, 51],\n"
        "                               pgd_steps=5 if SMOKE else 20)\n"
        "show_image(adversarial.plot_robustness(frame, os.path.join(digits_dir, 'robustness.png'), split='test'))\n"
        "frame"
    ),
    new_markdown_cell(
        "## A dog the network calls a cat\n\n"
        "A cats-and-dogs classifier (Oxford-IIIT Pet species, from the sample in `../shared/data`), "
        "and a targeted attack that moves a dog photo into the class `cat`."
    ),
    new_code_cell(
        "pets_dir = os.path.join(RUN_DIR, 'pets')\n"
        "config = TrainConfig(model='resnet20', data='oxford_iiit_pet', data_dir=PETS,\n"
        "                     data_args={'label': 'species'}, image_size=64, augment='light',\n"
        "                     epochs=2 if SMOKE else 15, batch_size=32, lr=1e-3, export=False,\n"
        "                     tensorboard=False, steps_per_epoch=3 if SMOKE else None)\n"
        "run_config(config, recipe='inside_a_convnet', run_dir=pets_dir)\n"
        "pets = load_subject(pets_dir)\n"
        "dog = load_image(os.path.join(PETS, 'images', 'american_bulldog_10.jpg'), pets.image_shape)[None]\n"
        "cat = pets.class_names.index('cat')\n"
        "dog_label = np.array([pets.class_names.index('dog')])\n"
        "dog_adv = adversarial.pgd(pets.model, dog, dog_label, eps=8.0, target=cat)\n"
        "show_image(adversarial.plot_adversarial(pets.model, dog, dog_adv,\n"
        "                                        os.path.join(pets_dir, 'dog_to_cat.png'),\n"
        "                                        class_names=pets.class_names))"
    ),
    new_markdown_cell(
        "## The ideal cat and the ideal dog\n\n"
        "The same gradient ascent as for the digits, on the pets model's two classes. With "
        "ImageNet weights (`tfresnet.create_model('resnet50', weights='imagenet')`, needs the "
        "download) class 281 is the lesson's tabby cat and 340 its zebra."
    ),
    new_code_cell(
        "images, probabilities = ideal.ideal_images(pets.model, [cat, pets.class_names.index('dog')], steps=steps)\n"
        "show_image(ideal.plot_ideal_images(images, probabilities, os.path.join(pets_dir, 'ideal.png'),\n"
        "                                   class_names=['cat', 'dog']))"
    ),
]
