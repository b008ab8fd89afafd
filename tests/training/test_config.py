import json

import pytest

from tfresnet.training.config import ConfigError, TrainConfig, apply_overrides


def test_overrides_are_typed_by_field():
    config = apply_overrides(TrainConfig(), [
        "epochs=3", "lr=0.05", "smoke=true", "image_size=none", "optimizer=sgd",
        "step_epochs=2,4", "schedule=step", "model_args.alpha=0.5", "data_dir=../shared/data",
        "jit_compile=false", "mixed_precision=mixed_bfloat16", "model=mobilenetv2",  # takes alpha
    ])
    assert config.epochs == 3 and isinstance(config.epochs, int)
    assert config.lr == 0.05 and config.smoke is True and config.image_size is None
    assert config.step_epochs == [2, 4] and config.model_args == {"alpha": 0.5}
    assert config.jit_compile is False and config.mixed_precision == "mixed_bfloat16"
    assert config.validate() is config


@pytest.mark.parametrize("override, match", [
    ("epohcs=3", "Unknown config key 'epohcs'. Did you mean epochs"),
    ("epochs=three", "epochs must be int. Received epochs='three'"),
    ("epochs=-1", "epochs must be >= 1. Received epochs=-1"),
    ("optimizer=adagrad", "optimizer must be 'sgd' or 'adam' or 'adamw' or 'rmsprop'"),
    ("lr=0", "lr must be > 0"),
    ("dropout=1.0", "dropout must be in \\[0, 1\\)"),
    ("model=resnet5", "model: Unknown model name 'resnet5'.*resnet50"),
    ("schedule=step", "step_epochs"),
    ("epochs", "key=value"),
    ("epochs.x=1", "not a dict"),
])
def test_bad_configs_fail_naming_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(TrainConfig(), [override]).validate()


def test_unknown_dataset_and_augmentation_fail_before_training():
    with pytest.raises(ConfigError, match="data: .*'imagenette'"):
        TrainConfig(data="imagenette").validate()
    with pytest.raises(ConfigError, match="augment: .*'extreme'"):
        TrainConfig(augment="extreme").validate()


def test_fine_tune_layer_per_model():
    config = TrainConfig(model="resnet50", freeze_backbone=True, fine_tune_epochs=1,
                         fine_tune_from={"resnet50": "conv5_block1_1_conv"})
    assert config.validate().fine_tune_layer() == "conv5_block1_1_conv"
    with pytest.raises(ConfigError, match="fine_tune_from.vgg19=LAYER_NAME"):
        apply_overrides(config, ["model=vgg19"]).validate()  # no registry layer to fall back on


def test_fine_tune_layer_falls_back_to_the_models_registry_layer_and_a_config_overrides_it():
    config = TrainConfig(model="mobilenetv2", freeze_backbone=True, fine_tune_epochs=1)
    assert config.validate().fine_tune_layer() == "block_13_expand"  # ModelSpec.fine_tune_from
    assert apply_overrides(config, ["fine_tune_from=block_15_expand"]).fine_tune_layer() == "block_15_expand"
    per_model = apply_overrides(config, ["fine_tune_from.resnet50=conv5_block1_1_conv"]).validate()
    assert per_model.fine_tune_layer() == "block_13_expand"  # the dict does not name mobilenetv2
    assert TrainConfig(model="resnet101").fine_tune_layer() is None  # the whole backbone


def test_round_trip_through_json():
    config = apply_overrides(TrainConfig(), ["model_args.alpha=0.75", "epochs=2"])
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    with pytest.raises(ConfigError, match="Unknown config key 'colour'"):
        TrainConfig.from_dict({"colour": "red"})


def test_tune_space_is_checked_naming_the_key():
    space = {"model": ["convnet", "resnet20"], "l2": {"min": 1e-5, "max": 1e-3, "sampling": "log"},
             "dropout": {"min": 0.0, "max": 0.5}, "batch_size": [64, 128], "augment": ["none", "mnist-shift"]}
    config = TrainConfig(tune=space)
    assert config.validate() is config
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    bad = [
        ({"modle": ["convnet"]}, "tune: Unknown config key 'modle'. Did you mean model"),
        ({"data": ["mnist"]}, "tune.data: data cannot be tuned"),
        ({"model": ["convnet", "resnet5"]}, "tune.model: the value 'resnet5' is not valid"),
        ({"augment": ["none", "extreme"]}, "tune.augment: the value 'extreme' is not valid"),
        ({"dropout": {"min": 0.0, "max": 1.0}}, "tune.dropout: the value 1.0 is not valid: dropout must be in"),
        ({"lr": {"min": 0.1, "max": 0.01}}, "tune.lr: min must be below max"),
        ({"lr": {"min": 0, "max": 0.1, "sampling": "log"}}, "tune.lr: log sampling needs min > 0"),
        ({"lr": {"min": 0.01, "max": 0.1, "smapling": "log"}}, "tune.lr: unknown range keys \\['smapling'\\]"),
        ({"batch_size": {"min": 16, "max": 64.5}}, "tune.batch_size: batch_size is an integer"),
        ({"dropout": [0.1, "high"]}, "tune.dropout: choices must all be of one type"),
        ({"lr": []}, "tune.lr: the list of choices is empty"),
        ({"lr": 0.01}, "tune.lr must be a list of choices"),
        ({"optimizer.beta": [0.9]}, "tune.optimizer.beta: only model_args entries"),
    ]
    for space, match in bad:
        with pytest.raises(ConfigError, match=match):
            TrainConfig(tune=space).validate()


# Every `--set` form README.md, the recipes' docstrings and the error messages show, with the
# value it must give. Extra overrides make the config valid (alpha needs a MobileNet).
README_OVERRIDES = [
    (["epochs=3"], "epochs", 3),
    (["lr=0.01"], "lr", 0.01),
    (["model=resnet50"], "model", "resnet50"),
    (["data_dir=../shared/data"], "data_dir", "../shared/data"),
    (["data=mnist"], "data", "mnist"),
    (["smoke=true"], "smoke", True),
    (["weights=none"], "weights", None),
    (["weights=/tmp/resnet50_notop.h5"], "weights", "/tmp/resnet50_notop.h5"),
    (["steps_per_epoch=none"], "steps_per_epoch", None),
    (["mixed_precision=mixed_bfloat16"], "mixed_precision", "mixed_bfloat16"),
    (["jit_compile=true"], "jit_compile", True),
    (["jit_compile=auto"], "jit_compile", "auto"),
    (["steps_per_execution=8"], "steps_per_execution", 8),
    (["steps_per_execution=4"], "steps_per_execution", 4),
    (["strategy=mirrored"], "strategy", "mirrored"),
    (["strategy=multiworker"], "strategy", "multiworker"),
    (["schedule=step", "epochs=90", "step_epochs=30,60"], "step_epochs", [30, 60]),
    (["model=mobilenetv2", "model_args.alpha=0.5"], "model_args", {"alpha": 0.5}),
    (['tune.lr={"min": 1e-4, "max": 1e-2, "sampling": "log"}'], "tune",
     {"lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"}}),
    (["tune.lr=null"], "tune", {"lr": None}),
    (["fine_tune_from=block2_conv"], "fine_tune_from", "block2_conv"),
    (["fine_tune_from.convnet=block2_conv"], "fine_tune_from", {"convnet": "block2_conv"}),
    (['fine_tune_from={"vgg16": "block5_conv1"}'], "fine_tune_from", {"vgg16": "block5_conv1"}),
    (["fine_tune_from=null", "fine_tune_from.resnet50=conv5_block1_1_conv"], "fine_tune_from",
     {"resnet50": "conv5_block1_1_conv"}),
    (["export=false", "verbose=0", "tensorboard=false"], "verbose", 0),
]


@pytest.mark.parametrize("overrides, key, expected", README_OVERRIDES,
                         ids=[" ".join(o) for o, _, _ in README_OVERRIDES])
def test_every_documented_set_form_works(overrides, key, expected, tmp_path):
    if key == "weights" and expected:  # validate() checks the file: an HDF5 one must be there
        overrides = [f"weights={tmp_path / 'resnet50_notop.h5'}"]
        expected = str(tmp_path / "resnet50_notop.h5")
        (tmp_path / "resnet50_notop.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    config = apply_overrides(TrainConfig(), overrides).validate()
    assert getattr(config, key) == expected
    assert type(getattr(config, key)) is type(expected)


def test_a_layer_name_cannot_be_extended_by_model():
    config = apply_overrides(TrainConfig(), ["fine_tune_from=block2_conv"])
    with pytest.raises(ConfigError, match="fine_tune_from is 'block2_conv'.*fine_tune_from=null"):
        apply_overrides(config, ["fine_tune_from.convnet=block1_conv"])
    with pytest.raises(ConfigError, match="model_args must be a JSON object"):
        apply_overrides(config, ["model_args=0.5"])


def test_step_epochs_must_be_numbers():
    with pytest.raises(ConfigError, match=r"step_epochs must be epoch numbers > 0.*\['thirty'\]"):
        apply_overrides(TrainConfig(), ["schedule=step", "step_epochs=thirty"]).validate()
