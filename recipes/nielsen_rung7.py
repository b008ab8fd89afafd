"""`tfresnet train nielsen_rung7` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/nielsen_rung7.py [--set key=value ...]
    tfresnet recipes nielsen_rung7   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("nielsen_rung7", __name__)
