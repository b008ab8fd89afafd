"""`tfresnet train cats_vs_dogs_transfer` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/cats_vs_dogs_transfer.py [--set key=value ...]
    tfresnet recipes cats_vs_dogs_transfer   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("cats_vs_dogs_transfer", __name__)
