import keras

import tfresnet
from tfresnet.cli import main
from tfresnet.models.profile import count_macs, matching_models


def test_count_macs_by_hand():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)          # 8*8*4 * 3*3*3 = 6912
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4*4 * 9 = 576
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)                             # 4*10 = 40
    assert count_macs(keras.Model(inputs, outputs)) == 6912 + 576 + 40


def test_resnet50_macs_match_the_paper():
    # He et al. 2015, Table 1: 3.8 x 10^9 multiply-adds (FLOPs in the table's wording).
    macs = count_macs(tfresnet.create_model("resnet50"))
    assert 3.8e9 < macs < 4.2e9


def test_list_models_cli_prints_a_table(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["list-models", "resnet2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "family", "input", "params", "MACs"]
    row = next(line for line in out if line.startswith("resnet20 "))
    params = tfresnet.create_model("resnet20").count_params()
    assert f"{params:,}" in row
    assert main(["list-models", "nonexistent"]) == 1


def test_list_models_pattern_matches_families_too():
    names = matching_models("resnet")
    assert {"resnet18", "resnet50v2", "resnet20", "plain20", "plain152"} <= set(names)
    assert not {"vgg16", "mobilenetv2", "convnet"} & set(names)
    assert matching_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
