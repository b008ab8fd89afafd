"""Oxford-IIIT Pet: a MobileNet v1 0.25 student distilled from a finished MobileNetV2 0.5 run.

The pets_transfer recipe (head, then fine-tuning) with a quarter-width MobileNet v1, which also
learns the teacher's softened outputs (`tfresnet.training.distill`: T^2 KL at temperature 4,
weighed 0.5 against the labels). The teacher is any finished run on the same data and classes.

Run (first the teacher, then the student; DATA_DIR as for pets_transfer):
    tfresnet train pets_transfer --set data_dir=DATA_DIR --set 'model_args={"alpha": 0.5}' \\
        --run-dir runs/pets_teacher
    tfresnet train pets_distill --set data_dir=DATA_DIR --set teacher=runs/pets_teacher
    tfresnet train pets_distill --set teacher=null ...    # the same student alone, to compare

Offline, on the shared three-breed sample with the shared ImageNet files (a fixed 20% of its
trainval list held out as test, stratified, seed 0, used for nothing else):
    W=../shared/data/imagenet_weights; P=../shared/data/oxford_iiit_pet_sample
    tfresnet train pets_transfer --set data_dir=$P --set data_args.test_split=0.2 \\
        --set 'model_args={"alpha": 0.5}' --set epochs=5 --set fine_tune_epochs=5 --set export=false \\
        --set weights=$W/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5 \\
        --run-dir runs/pets_teacher
    tfresnet train pets_distill --set data_dir=$P --set data_args.test_split=0.2 \\
        --set epochs=5 --set fine_tune_epochs=5 --set teacher=runs/pets_teacher \\
        --set weights=$W/mobilenet_2_5_224_tf_no_top.h5 --run-dir runs/pets_student_distilled

Measured so (5 + 5 epochs each, teacher with export=false, run dirs runs/distill/*; accuracy on the
60 held-out test images, one seed, so one image is 1.7 points; 2 CPU cores shared with other jobs):
    teacher MobileNetV2 0.5 93.3% (710,067 parameters, 34 images/s in predict);
    MobileNet v1 0.25 alone (--set teacher=null) 93.3%, distilled 95.0% (219,315 parameters,
    64 images/s; SavedModel 2.7 MB); distilled training took 167 s against 115 s alone.
Over 3 seeds of the full recipe (deterministic, `python benchmarks/transfer.py --seeds 0,1,2 --tasks
breeds`), the student's median was 91.7% both alone and distilled: not shown to help.
docs/training.md ("Knowledge distillation") gives the tables and the exact commands.
"""

import dataclasses

from tfresnet.recipes.pets_transfer import get_config as pets_config
from tfresnet.training.cli import main


def get_config():
    """pets_transfer's two phases with MobileNet v1 0.25, learning from runs/pets_teacher too."""
    return dataclasses.replace(
        pets_config(),
        model="mobilenetv1",
        model_args={"alpha": 0.25},
        teacher="runs/pets_teacher",  # a finished run on the same data (its classes are checked)
        distill_temperature=4.0,      # Hinton et al.'s range (2-20); keras.io's example uses 10
        distill_alpha=0.5,            # the soft labels' weight; the labels get the rest
    )


if __name__ == "__main__":
    raise SystemExit(main(get_config))
