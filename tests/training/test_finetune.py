"""Transfer-learning steps: which layers train in each phase, and batch norm in inference mode."""

import keras
import numpy as np
import pytest

import tfresnet
from tfresnet.training import finetune

CASES = [
    ("mobilenetv2", {"predictions"}, "block_13_expand"),
    ("resnet50", {"predictions"}, "conv5_block1_1_conv"),
    ("vgg16", {"fc1", "fc2", "predictions"}, "block5_conv1"),
]


@pytest.mark.parametrize("name, head_weights, first", CASES, ids=[c[0] for c in CASES])
def test_phases_train_the_right_layers(name, head_weights, first):
    model = tfresnet.create_model(name, input_shape=(32, 32, 3), num_classes=4)
    head = finetune.head_layer_names(model, name, input_shape=(32, 32, 3))
    finetune.freeze_backbone(model, head)
    assert set(finetune.trainable_layer_names(model)) == head_weights

    finetune.unfreeze_from(model, first)
    names = [layer.name for layer in model.layers]
    trainable = finetune.trainable_layer_names(model)
    start = names.index(first)
    expected = [layer.name for layer in model.layers[start:]
                if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    assert trainable == expected
    assert all(not layer.trainable for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_frozen_batch_norm_runs_in_inference_mode():
    model = tfresnet.create_model("resnet50", input_shape=(32, 32, 3), num_classes=4)
    finetune.freeze_backbone(model, finetune.head_layer_names(model, "resnet50",
                                                              input_shape=(32, 32, 3)))
    finetune.unfreeze_from(model, None)
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    # With BN frozen, training=True uses the moving statistics: same output as inference.
    np.testing.assert_allclose(np.asarray(model(x, training=True)),
                               np.asarray(model(x, training=False)), atol=1e-5)


def test_unknown_layer_is_named():
    model = tfresnet.create_model("resnet50", input_shape=(32, 32, 3), num_classes=4)
    with pytest.raises(ValueError, match="fine_tune_from='conv9_block1'.*not a layer"):
        finetune.unfreeze_from(model, "conv9_block1")
