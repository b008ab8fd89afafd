"""`tfresnet train mnist_fast` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/mnist_fast.py [--set key=value ...]
    tfresnet recipes mnist_fast   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("mnist_fast", __name__)
