"""Cats vs Dogs (Microsoft PetImages) from an ImageNet backbone: the pets recipe, two classes.

Run (DATA_DIR holds PetImages/Cat and PetImages/Dog, or tensorflow-datasets downloads it):
    python recipes/cats_vs_dogs_transfer.py --set data_dir=DATA_DIR
    tfresnet train recipes/cats_vs_dogs_transfer.py --set smoke=true --set weights=none \\
        --set data_dir=PATH_TO_PETIMAGES

Expected result and time: not measured yet. Both need the ImageNet weights and the full dataset,
and the development machine (2-core CPU, no network) has neither; the smoke run above is what the
tests exercise.
"""

import dataclasses

from pets_transfer import get_config as pets_config

from tfresnet.training.cli import main


def get_config():
    """pets_transfer with the two-class dataset; its ~1,600 broken JPEGs are skipped and listed."""
    return dataclasses.replace(pets_config(), data="cats_vs_dogs", data_args={},
                               epochs=3, fine_tune_epochs=2)


if __name__ == "__main__":
    raise SystemExit(main(get_config))
