"""Gradients on whichever backend Keras runs: the one place the diagnostics touch a backend.

`keras.ops` has no gradient op, so each backend's own autodiff is used here (TensorFlow's
GradientTape, `jax.value_and_grad`), behind two functions. Weight gradients go through
`model.stateless_call`, so measuring them never updates batch-norm statistics or any other state
of the model being inspected.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

__all__ = ["input_gradient", "weight_gradients", "SUPPORTED_BACKENDS"]

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def _backend() -> str:
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise NotImplementedError(
            f"tfresnet.inspect computes gradients on the {' and '.join(SUPPORTED_BACKENDS)} "
            f"backends; KERAS_BACKEND is {backend!r}."
        )
    return backend


def input_gradient(fn: Callable, x) -> tuple[float, np.ndarray]:
    """The value of a scalar function of a batch and its gradient with respect to the batch.

    Args:
        fn: maps a float32 tensor shaped like `x` to a scalar tensor (built from `keras.ops`).
        x: the point, an array.

    Returns:
        ``(value, gradient)``: a float and a float32 array shaped like `x`.
    """
    x = np.asarray(x, dtype="float32")
    if _backend() == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(x)
        return float(value), np.asarray(grad)
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fn(x)
    return float(value), tape.gradient(value, x).numpy()


def weight_gradients(
    model: keras.Model, loss_fn: Callable, x, y, *, training: bool = True
) -> tuple[float, list[np.ndarray]]:
    """The loss and its gradient with respect to each of `model.trainable_variables`.

    Args:
        model: the model; its variables and state are left exactly as they were.
        loss_fn: ``loss_fn(y, outputs) -> scalar tensor``.
        x: a batch of inputs.
        y: the batch's targets, passed to `loss_fn` as they are.
        training: call the model in training mode (batch norm on batch statistics, dropout on),
            as the optimizer sees it.

    Returns:
        ``(loss, gradients)``: a float, and one array per trainable variable, in the same order.
    """
    x = np.asarray(x, dtype="float32")
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss_of(values):
        outputs, _ = model.stateless_call(values, non_trainable, x, training=training)
        return loss_fn(y, outputs)

    if _backend() == "jax":
        import jax

        value, grads = jax.value_and_grad(loss_of)(trainable)
        return float(value), [np.asarray(g) for g in grads]
    import tensorflow as tf

    trainable = [tf.convert_to_tensor(v) for v in trainable]
    with tf.GradientTape() as tape:
        tape.watch(trainable)
        value = loss_of(trainable)
    grads = tape.gradient(value, trainable)
    return float(value), [np.zeros(v.shape, "float32") if g is None else g.numpy()
                          for g, v in zip(grads, trainable)]
