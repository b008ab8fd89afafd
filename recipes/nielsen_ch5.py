"""`tfresnet train nielsen_ch5` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/nielsen_ch5.py [--set key=value ...]
    tfresnet recipes nielsen_ch5   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("nielsen_ch5", __name__)
