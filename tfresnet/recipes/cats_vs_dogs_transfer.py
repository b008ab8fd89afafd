"""Cats vs Dogs (Microsoft PetImages) from an ImageNet backbone: the pets recipe, two classes.

Run (DATA_DIR holds PetImages/Cat and PetImages/Dog, or tensorflow-datasets downloads it):
    tfresnet train cats_vs_dogs_transfer --set data_dir=DATA_DIR
    tfresnet train cats_vs_dogs_transfer --set smoke=true --set weights=none \\
        --set data_dir=PATH_TO_PETIMAGES

Offline, point weights= at a keras.applications file and pick its width, e.g. (the shared files):
    W=../shared/data/imagenet_weights
    tfresnet train cats_vs_dogs_transfer --set data_dir=DATA_DIR --set 'model_args={"alpha": 0.35}' \\
        --set weights=$W/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5

Measured: on PetImages itself, not yet (the development machine has no copy of it). The same
two-class question on the Oxford-IIIT Pet sample (`pets_transfer` with ``label=species``: two cat
breeds against a dog breed, 60 held-out trainval images that choose nothing), by
``python benchmarks/transfer.py --tasks species --seeds 0,1,2`` on 2 CPU cores (median of 3 seeds,
each with its own 60 test images): MobileNetV2 0.35 98.3% after feature extraction (15 s of
training), 98.3% after fine-tuning (20 s); MobileNetV2 0.5 100% and 98.3% (12 s, 22 s); the same
networks from scratch on the same budget 66.7% (every image called a cat).
"""

import dataclasses

from tfresnet.recipes.pets_transfer import get_config as pets_config
from tfresnet.training.cli import main


def get_config():
    """pets_transfer with the two-class dataset; its ~1,600 broken JPEGs are skipped and listed."""
    return dataclasses.replace(pets_config(), data="cats_vs_dogs", data_args={},
                               epochs=3, fine_tune_epochs=2)


if __name__ == "__main__":
    raise SystemExit(main(get_config))
