"""`tfresnet train nielsen_rung1` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/nielsen_rung1.py [--set key=value ...]
    tfresnet recipes nielsen_rung1   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("nielsen_rung1", __name__)
