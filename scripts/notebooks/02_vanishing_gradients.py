"""Cells of notebooks/02_vanishing_gradients.ipynb (written by scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

CELLS = [
    new_markdown_cell(
        "# Vanishing gradients\n\n"
        "How strongly does the loss pull on each layer? `tfresnet.inspect.gradient_norms` gives "
        "the norm of the cross-entropy gradient of every trainable weight, input side first, and "
        "changes nothing in the model. Three looks:\n\n"
        "1. Nielsen's sigmoid networks (*Neural Networks and Deep Learning*, chapter 5): the "
        "first hidden layer learns far more slowly than the last.\n"
        "2. He et al.'s plain nets against their residual twins, with batch norm: do the plain "
        "nets' gradients vanish? (The paper says batch norm keeps them healthy; measure it.)\n"
        "3. During training, with the `GradientFlow` callback a recipe turns on with "
        "`gradient_flow=K`.\n\n"
        "Real MNIST is used when `mnist.npz` is in `$TFRESNET_DATA_DIR` (default "
        "`../shared/data`), else the sample shipped with tfresnet. `TFRESNET_SMOKE=1` shrinks "
        "everything to seconds (the test suite does)."
    ),
    new_code_cell(
        "import os\n\n"
        "import keras\n"
        "import pandas as pd\n\n"
        "import tfresnet\n"
        "from tfresnet.inspect import gradient_norms, layer_norms, plot_gradient_norms\n"
        "from tfresnet.training import TrainConfig\n"
        "from tfresnet.training.cli import run_config\n"
        "from tfresnet.training.report import show_image\n\n"
        "SMOKE = os.environ.get('TFRESNET_SMOKE') == '1'\n"
        "RUN_DIR = os.environ.get('TFRESNET_RUN_DIR', 'runs/vanishing_gradients')\n"
        "DATA_DIR = os.environ.get('TFRESNET_DATA_DIR', '../shared/data')\n"
        "REAL = os.path.isfile(os.path.join(DATA_DIR, 'mnist.npz'))\n"
        "os.makedirs(RUN_DIR, exist_ok=True)\n\n"
        "# The first 1,000 training digits in stored order, raw pixels (Nielsen uses 1,000).\n"
        "digits = tfresnet.data.load('mnist' if REAL else 'mnist-sample', data_dir=DATA_DIR if REAL else None,\n"
        "                            batch_size=100 if SMOKE else 1000, validation_split=0,\n"
        "                            shuffle=False, verbose=0)\n"
        "x, y = (t.numpy() for t in next(iter(digits.train)))\n"
        "print(f'{len(x)} training digits of {digits.name}')"
    ),
    new_markdown_cell(
        "## Nielsen's sigmoid networks at initialisation\n\n"
        "[784, 30 x k, 10] for k = 1..4, sigmoid everywhere, weights N(0, 1/n_in), biases "
        "N(0, 1), inputs in [0, 1]: the registry's `sigmoid_mlp_30x1` ... `sigmoid_mlp_30x4`. "
        "Nielsen's networks end in sigmoid units with the cross-entropy cost summed over them, "
        "so the output layer is built with `classifier_activation='sigmoid'` here "
        "(`gradient_norms` then uses that cost). His numbers for k = 4, first hidden layer to "
        "last: **0.003, 0.017, 0.070, 0.285**. The measure is the norm of the gradient of each "
        "layer's biases."
    ),
    new_code_cell(
        "frames = []\n"
        "for k in range(1, 5):\n"
        "    keras.utils.set_random_seed(0)\n"
        "    model = tfresnet.create_model(f'sigmoid_mlp_30x{k}', preprocessing='auto',\n"
        "                                  classifier_activation='sigmoid')\n"
        "    frames.append(gradient_norms(model, x, y).assign(model=model.name))\n"
        "sigmoid_nets = pd.concat(frames, ignore_index=True)\n"
        "biases = sigmoid_nets[sigmoid_nets['weight'] == 'bias']\n"
        "biases.pivot(index='model', columns='layer', values='grad_norm').round(4)"
    ),
    new_code_cell(
        "show_image(plot_gradient_norms(sigmoid_nets, os.path.join(RUN_DIR, 'sigmoid_nets.png'),\n"
        "                               weight='bias', title='Bias gradient norm per layer, at initialisation'))"
    ),
    new_markdown_cell(
        "Each layer towards the input gets a gradient about 4-5x smaller: the derivative of the "
        "sigmoid is at most 1/4, and the N(0, 1/n_in) weights do not make up for it. The first "
        "hidden layer of the 4-layer net learns about 100x more slowly than the last (measured "
        "on 1,000 real digits: 0.0025, 0.0126, 0.0586, 0.2925 for seed 0; the book's 0.003, "
        "0.017, 0.070, 0.285).\n\n"
        "## Plain against residual nets, with batch norm\n\n"
        "He et al.'s small-image nets (section 4.2): every convolution is followed by batch norm. "
        "The measure is now the norm of each convolution kernel's gradient, at initialisation, "
        "in training mode (batch statistics, as the optimizer sees it). The smoke run skips the "
        "56-layer nets."
    ),
    new_code_cell(
        "names = ['plain20', 'resnet20'] + ([] if SMOKE else ['plain56', 'resnet56'])\n"
        "probe = slice(0, 32 if SMOKE else 256)\n"
        "frames = []\n"
        "for name in names:\n"
        "    keras.utils.set_random_seed(0)\n"
        "    model = tfresnet.create_model(name, input_shape=x.shape[1:], num_classes=10, preprocessing='auto')\n"
        "    frames.append(gradient_norms(model, x[probe], y[probe], batches=2).assign(model=name))\n"
        "deep_nets = pd.concat(frames, ignore_index=True)\n"
        "kernels = layer_norms(deep_nets, weight='kernel', by='model')\n"
        "kernels.groupby('model', sort=False)['grad_norm'].agg(first='first', last='last', median='median')"
    ),
    new_code_cell(
        "show_image(plot_gradient_norms(deep_nets, os.path.join(RUN_DIR, 'plain_vs_resnet.png'),\n"
        "                               weight='kernel', title='Kernel gradient norm per layer, at initialisation'))"
    ),
    new_markdown_cell(
        "With batch norm nothing vanishes at initialisation, but the plain nets' gradients are "
        "not healthy either: they *grow* towards the input, geometrically with depth. plain56's "
        "first convolution gets a gradient about 1,000x larger than its last (plain20's about "
        "4x), while the residual nets stay within a few x. `scripts/gradient_flow_depth.py` "
        "repeats this for three seeds and after 200 training steps, when plain56, which has "
        "barely learned, has a ragged profile with its first layer's gradient 15-100x below its "
        "last's, and the residual nets a flat one.\n\n"
        "## During training\n\n"
        "`gradient_flow=K` in a config adds `tfresnet.inspect.GradientFlow`: every K optimizer "
        "steps it measures the norms on a fixed probe batch (the first batch of the training "
        "split, unshuffled) and appends them to `gradient_flow.csv` in the run directory; at the "
        "end it draws a depth x step heatmap and the first and last records. It never changes "
        "the training."
    ),
    new_code_cell(
        "config = TrainConfig(model='plain20', data='mnist-sample', epochs=2, lr=3e-3, batch_size=64,\n"
        "                     gradient_flow=1 if SMOKE else 10, smoke=SMOKE, export=False, tensorboard=False)\n"
        "result = run_config(config, recipe='vanishing_gradients', run_dir=os.path.join(RUN_DIR, 'plain20'))\n"
        "flow = pd.read_csv(os.path.join(result.run_dir, 'gradient_flow.csv'))\n"
        "flow.groupby('step')['loss'].first()"
    ),
    new_code_cell("show_image(os.path.join(result.run_dir, 'gradient_flow.png'))"),
    new_code_cell("show_image(os.path.join(result.run_dir, 'gradient_flow_layers.png'))"),
]
