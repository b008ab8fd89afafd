"""`tfresnet train nielsen_rung2` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/nielsen_rung2.py [--set key=value ...]
    tfresnet recipes nielsen_rung2   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("nielsen_rung2", __name__)
