"""`tfresnet train he_degradation` from a checkout: runs the packaged recipe of that name.

Run:
    python recipes/he_degradation.py [--set key=value ...]
    tfresnet recipes he_degradation   # its commands and measured results
"""

from tfresnet.training.cli import recipe_script

get_config = recipe_script("he_degradation", __name__)
