"""`tfresnet train pets_distill` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/pets_distill.py [--set key=value ...]
    tfresnet recipes pets_distill   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("pets_distill", __name__)
