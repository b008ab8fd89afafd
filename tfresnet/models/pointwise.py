"""A 1x1 convolution's weight gradient from whichever kernel is faster: TensorFlow's, or one matmul.

For a 1x1 kernel the weight gradient is a plain matrix product: the input's pixels as rows,
``dW = x[:, ::s, ::s].reshape(-1, C).T @ dy.reshape(-1, K)``. TensorFlow computes it with
``Conv2DBackpropFilter`` (oneDNN on CPUs), which for some shapes runs far below the matmul kernel of
the same product. Measured alone on a 2-core AVX-512 EPYC (``python benchmarks/pointwise_grad.py``,
ResNet-50's layers): in float32 at batch 64, 230 against 436 GFLOP/s for 56x56x64 to 256 channels,
but 392 against 187 for a stride-2 layer (the matmul needs a strided copy first); in bfloat16 at
batch 32 the matmul lost at 56x56x64 to 256 (474 against 386) and won at 7x7x2048 to 512 (428
against 689). So neither is right everywhere, and the choice is measured per shape, as cuDNN's
autotuner chooses its algorithms.

`TunedConv2D` (`tfresnet.models.layers`) calls `conv2d`. Its ``weight_grad`` attribute is
``"auto"`` (time both kernels once per shape and precision, at the first gradient trace, on this
machine), ``"conv"`` (TensorFlow's, as `keras.layers.Conv2D`) or ``"matmul"``. Under
`tf.config.experimental.enable_op_determinism` "auto" means "conv": a timed choice could differ
between two runs, and with it the order of the sums.

TensorFlow only: on JAX, XLA picks the convolution's gradient kernels itself.
"""

from __future__ import annotations

import time

WEIGHT_GRADS = ("auto", "conv", "matmul")

# The choice per (input shape, kernel shape, stride, dtype), measured once per process.
_choices: dict[tuple, str] = {}
# Below this many multiply-adds both kernels take well under a millisecond, where a call's dispatch
# weighs as much as the kernel in a timing: TensorFlow's, untimed.
_MIN_TUNED_MACS = 20_000_000
_TUNE_BATCH = 32  # the batch timed when the traced one is unknown (None)


def applies(layer) -> bool:
    """Whether `layer` (a Conv2D) computes the product the matmul gradient assumes."""
    return (tuple(layer.kernel_size) == (1, 1) and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1
            and layer.data_format == "channels_last" and layer.strides[0] == layer.strides[1])


def conv2d(x, kernel, stride: int, weight_grad: str, bias=None):
    """``tf.nn.conv2d`` of an NHWC input and a 1x1 kernel ('same' and 'valid' agree for 1x1), plus
    `bias`, whose weight gradient is `weight_grad`'s kernel; its input gradient is TensorFlow's own."""
    import tensorflow as tf

    if weight_grad not in WEIGHT_GRADS:
        raise ValueError(f"weight_grad must be one of {WEIGHT_GRADS}. Received weight_grad={weight_grad!r}")
    kernel = tf.convert_to_tensor(kernel)  # a variable's read, so its gradient flows through it

    @tf.custom_gradient
    def forward(x, kernel, *bias):
        def grad(dy):
            dx = tf.nn.conv2d_transpose(dy, kernel, tf.shape(x), stride, "VALID")
            algorithm = weight_grad if weight_grad != "auto" else choose(x.shape, kernel.shape, stride, x.dtype)
            return (dx, weight_gradient(x, dy, kernel.shape, stride, algorithm),
                    *[bias_gradient(dy)] * len(bias))

        y = tf.nn.conv2d(x, kernel, stride, "VALID")
        return (tf.nn.bias_add(y, bias[0]) if bias else y), grad

    return forward(x, kernel, *([] if bias is None else [tf.cast(tf.convert_to_tensor(bias), x.dtype)]))


def bias_gradient(dy):
    """The sum of `dy` over all but its channels, as a matmul: in bfloat16 it accumulates in float32,
    as the convolution's weight-gradient kernel does when TensorFlow fuses the bias into it (a
    `BiasAddGrad` of its own was 3% off the float64 sum for 324 bfloat16 terms, the matmul 0.1%)."""
    import tensorflow as tf

    rows = tf.reshape(dy, (-1, dy.shape[-1]))
    return tf.reshape(tf.matmul(tf.ones((1, tf.shape(rows)[0]), dy.dtype), rows), (dy.shape[-1],))


def weight_gradient(x, dy, kernel_shape, stride: int, algorithm: str):
    """dLoss/dKernel of a 1x1 convolution by `algorithm` ("conv" or "matmul")."""
    import tensorflow as tf

    if algorithm == "conv":
        return tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=list(kernel_shape), out_backprop=dy,
                                               strides=[1, stride, stride, 1], padding="VALID")
    if stride > 1:
        x = x[:, ::stride, ::stride, :]
    channels, filters = kernel_shape[2], kernel_shape[3]
    product = tf.matmul(tf.reshape(x, (-1, channels)), tf.reshape(dy, (-1, filters)), transpose_a=True)
    return tf.reshape(product, kernel_shape)


def choose(x_shape, kernel_shape, stride: int, dtype) -> str:
    """The faster weight-gradient kernel for this shape on this machine, timed once per process."""
    import tensorflow as tf

    from tfresnet.tf_compat import op_determinism_enabled

    if op_determinism_enabled():
        return "conv"
    batch = x_shape[0] if x_shape[0] is not None else _TUNE_BATCH
    shape = (batch, *x_shape[1:])
    key = (tuple(shape), tuple(kernel_shape), stride, tf.as_dtype(dtype).name)
    if key not in _choices:
        out = output_shape(shape, kernel_shape, stride)
        macs = out[0] * out[1] * out[2] * kernel_shape[2] * kernel_shape[3]
        with tf.init_scope():  # eager, outside the train step being traced
            _choices[key] = "conv" if macs < _MIN_TUNED_MACS else _time_both(shape, out, kernel_shape, stride, dtype)
    return _choices[key]


def output_shape(shape, kernel_shape, stride: int) -> tuple:
    """The output shape of a 1x1 convolution of an NHWC input of `shape`."""
    return (shape[0], -(-shape[1] // stride), -(-shape[2] // stride), kernel_shape[3])


def _time_both(shape, out, kernel_shape, stride: int, dtype) -> str:
    seconds = time_weight_gradients(shape, out, kernel_shape, stride, dtype)
    return min(seconds, key=seconds.get)


def time_weight_gradients(shape, out, kernel_shape, stride: int, dtype, repeats: int = 3) -> dict[str, float]:
    """Seconds of each weight-gradient kernel (the best of `repeats`, after a warm-up call) for an
    input of `shape` and an output gradient of shape `out`: ``{"conv": s, "matmul": s}``."""
    import tensorflow as tf

    x = tf.cast(tf.random.normal(shape), dtype)
    dy = tf.cast(tf.random.normal(out), dtype)
    best = {}
    for algorithm in ("conv", "matmul"):
        weight_gradient(x, dy, kernel_shape, stride, algorithm).numpy()  # warm-up: oneDNN builds its primitive
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            weight_gradient(x, dy, kernel_shape, stride, algorithm).numpy()
            seconds.append(time.perf_counter() - start)
        best[algorithm] = min(seconds)
    return best


def choices() -> dict[tuple, str]:
    """The choices made so far: ``{(input shape, kernel shape, stride, dtype): "conv" | "matmul"}``."""
    return dict(_choices)
