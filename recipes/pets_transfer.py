"""`tfresnet train pets_transfer` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/pets_transfer.py [--set key=value ...]
    tfresnet recipes pets_transfer   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("pets_transfer", __name__)
