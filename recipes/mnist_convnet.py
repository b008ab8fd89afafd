"""`tfresnet train mnist_convnet` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/mnist_convnet.py [--set key=value ...]
    tfresnet recipes mnist_convnet   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("mnist_convnet", __name__)
