"""`tfresnet train mnist_resnet` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/mnist_resnet.py [--set key=value ...]
    tfresnet recipes mnist_resnet   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("mnist_resnet", __name__)
