"""Layers shared by the model families, serialisable so `.keras` files load with safe_mode=True.

- `StochasticDepth`: drop-path on a residual branch (Huang et al. 2016, "Deep Networks with
  Stochastic Depth").
- `FusedBatchNormalization`: `keras.layers.BatchNormalization`, training through TensorFlow's
  fused kernel; every builder uses it.
- `TunedConv2D`: `keras.layers.Conv2D`, whose 1x1 kernels' weight gradient comes from the faster of
  TensorFlow's kernel and one matmul (`tfresnet.models.pointwise`).
- `Preprocess`: the input scaling each family's ImageNet weights were trained with, as a layer, so
  that a model (and its SavedModel export) can take raw uint8 images. This is the one place the
  scaling conventions of `keras.applications.*.preprocess_input` live in tfresnet.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["FusedBatchNormalization", "TunedConv2D", "StochasticDepth", "Preprocess", "PREPROCESSING_MODES"]

# ImageNet channel statistics, as keras.applications.imagenet_utils uses them.
_IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)  # "caffe" subtracts these in BGR order
_IMAGENET_MEAN_UNIT = (0.485, 0.456, 0.406)
_IMAGENET_STD_UNIT = (0.229, 0.224, 0.225)

PREPROCESSING_MODES = ("caffe", "tf", "torch", "unit")


@keras.saving.register_keras_serializable(package="tfresnet")
class StochasticDepth(keras.layers.Layer):
    """Drops a whole residual branch per example while training, rescaling the survivors.

    Args:
        rate: probability of dropping the branch, in [0, 1).
        seed: optional seed of the layer's random stream.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"StochasticDepth rate must be in [0, 1). Received rate={rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        # One keep/drop decision per example: the noise broadcasts over H, W and C.
        noise_shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        return keras.random.dropout(
            inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfresnet")
class Preprocess(keras.layers.Layer):
    """Scales raw pixel values in [0, 255] (uint8 or float) the way a family's weights expect.

    Modes, matching `keras.applications` (`imagenet_utils.preprocess_input`):
        - ``"caffe"``: RGB to BGR, then subtract the ImageNet mean (ResNet v1, VGG).
        - ``"tf"``: scale to [-1, 1] (ResNet v2, MobileNet v1/v2).
        - ``"torch"``: scale to [0, 1], then normalise by the ImageNet mean and std.
        - ``"unit"``: scale to [0, 1] (small networks trained from scratch, e.g. on MNIST).

    Single-channel inputs use the mean of the three channel statistics, so grayscale models
    keep the same scaling as their RGB twins.

    Args:
        mode: one of `PREPROCESSING_MODES`.
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(
                f"Unknown preprocessing mode {mode!r}; expected one of {PREPROCESSING_MODES}."
            )
        self.mode = mode

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels not in (1, 3):
            raise ValueError(
                f"Preprocess({self.mode!r}) needs 1 or 3 channels. Received input_shape={input_shape}"
            )
        self._channels = channels

    def _stat(self, values):
        if self._channels == 1:
            values = (sum(values) / 3.0,)
        return ops.convert_to_tensor(values, dtype=self.compute_dtype)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "torch":
            return (x / 255.0 - self._stat(_IMAGENET_MEAN_UNIT)) / self._stat(_IMAGENET_STD_UNIT)
        # caffe
        if self._channels == 3:
            x = ops.flip(x, axis=-1)
        return x - self._stat(_IMAGENET_MEAN_RGB[::-1])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="tfresnet")
class TunedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose 1x1 kernels train with the faster weight-gradient kernel.

    Its forward pass and input gradient are `keras.layers.Conv2D`'s; so are its variables and config,
    so keras.applications weights load. Only a 1x1 kernel's weight gradient differs, on TensorFlow:
    `weight_grad` (not saved: it says how this process trains, as ``jit_compile`` does) is
    ``"auto"``, ``"conv"`` or ``"matmul"``, as `tfresnet.models.pointwise` explains. The
    trainer sets it from ``TrainConfig.pointwise_weight_grad``.
    """

    weight_grad = "auto"

    def tunes_weight_gradient(self) -> bool:
        """Whether this layer's training step takes its weight gradient from `tfresnet.models.pointwise`."""
        from tfresnet.models import pointwise

        # A frozen layer needs no weight gradient, so nothing to choose (transfer learning's phase 1).
        return (keras.backend.backend() == "tensorflow" and self.weight_grad != "conv" and self.trainable
                and pointwise.applies(self))

    def call(self, inputs):
        from tfresnet.models import pointwise

        if not self.tunes_weight_gradient():
            return super().call(inputs)
        # The bias inside the tuned op: its gradient then accumulates as TensorFlow's fused one does.
        outputs = pointwise.conv2d(inputs, self.kernel, self.strides[0], self.weight_grad,
                                   bias=self.bias if self.use_bias else None)
        return outputs if self.activation is None else self.activation(outputs)


# The smallest epsilon FusedBatchNormV3 takes; `tf.compat.v1.nn.fused_batch_norm` would silently raise
# a smaller one to it, so such layers keep Keras' own path.
FUSED_MIN_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="tfresnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training step runs TensorFlow's fused kernel.

    Keras 3 trains batch norm on TensorFlow as `tf.nn.moments` then `tf.nn.batch_normalization`:
    about ten ops forward and more backward, each a pass over the activations (keras-team/keras-core
    issue 225, "BatchNorm is slow"). ``FusedBatchNormV3`` does each direction in one op (oneDNN on
    CPU, cuDNN on GPU). On 2 CPU cores ResNet-50 trains 1.16x and MobileNetV2 1.80x faster with it
    at batch 32 (``python benchmarks/batchnorm.py``). Same variables and config, so keras.applications
    weights load; results agree within float rounding (``tests/models/test_fused_batchnorm.py``).

    Keras' own path runs wherever the fused op would not compute the same thing, or cannot: other
    backends (XLA fuses batch norm itself on JAX), inference and frozen layers, masks, renorm,
    synchronized statistics, an axis other than the last of a 4-D input, and epsilon under
    `FUSED_MIN_EPSILON`.
    """

    def _fusable(self, inputs, training, mask) -> bool:
        rank = len(inputs.shape)
        return bool(training and self.trainable and mask is None and not self.renorm and not self.synchronized
                    and rank == 4 and self.axis % rank == 3 and self.epsilon >= FUSED_MIN_EPSILON
                    and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        # A 16-bit float input goes in as it is: the op keeps its statistics and arithmetic in
        # float32, as Keras does after casting, and rounds once on the way out, so outputs and
        # gradients are Keras' own (tests/models/test_fused_batchnorm.py) without two casts of
        # every activation: 1.5x faster forward and backward for a bfloat16 32x56x56x256 batch
        # on a 2-core Xeon (104 against 153 ms, medians of 4).
        dtype = self.compute_dtype if self.compute_dtype in _FUSED_16_BIT else "float32"
        outputs, mean, variance = _fused_batch_norm_tf(
            ops.cast(inputs, dtype),
            ops.cast(self.gamma, "float32") if self.scale else None,
            ops.cast(self.beta, "float32") if self.center else None,
            self.epsilon)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum
                                + ops.cast(mean, self.moving_mean.dtype) * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum
                                    + ops.cast(variance, self.moving_variance.dtype) * (1.0 - momentum))
        return ops.cast(outputs, self.compute_dtype)


_FUSED_16_BIT = ("bfloat16", "float16")  # input dtypes FusedBatchNormV3 takes with float32 statistics


def _fused_batch_norm_tf(x, gamma, beta, epsilon):
    """Normalised `x` (NHWC; float32, bfloat16 or float16) and its batch mean and (biased) variance, in one fused op."""
    import tensorflow as tf  # only on the TensorFlow backend: JAX machines have no TensorFlow

    channels = x.shape[-1]
    gamma = tf.ones([channels]) if gamma is None else gamma
    beta = tf.zeros([channels]) if beta is None else beta
    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon,
                                                               data_format="NHWC", is_training=True)
    # The op returns the variance with Bessel's correction, n / (n - 1); Keras' moving variance
    # averages the biased one, which is also what the op normalised with.
    n = tf.cast(tf.size(x) // channels, variance.dtype)
    return outputs, mean, variance * (n - 1.0) / tf.maximum(n, 2.0)
