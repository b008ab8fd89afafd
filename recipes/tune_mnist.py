"""The packaged search recipe `tfresnet/recipes/tune_mnist.py`, for commands that give its checkout path.

Run:
    tfresnet tune recipes/tune_mnist.py --max-trials 6   # the same as: tfresnet tune tune_mnist
    tfresnet recipes tune_mnist                          # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("tune_mnist", __name__)
