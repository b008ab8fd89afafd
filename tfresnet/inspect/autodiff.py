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

__all__ = ["input_gradient", "input_gradient_fn", "layer_gradient", "weight_gradients", "SUPPORTED_BACKENDS"]

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


def input_gradient_fn(fn: Callable) -> Callable:
    """A compiled `input_gradient` for the many calls of an optimisation loop.

    Compiling (``tf.function``, ``jax.jit``) makes each call of a small network several times
    faster than eager `input_gradient` (ResNet-20 on 10 digits, 2-core CPU: 0.03 s instead of
    0.15-0.25 s per call on TensorFlow). Each new input shape compiles once more.

    Args:
        fn: ``fn(x, *args) -> scalar``: as for `input_gradient`, with optional further array
            arguments (e.g. labels) that are inputs of the compiled function, not constants
            captured when it was traced. On JAX the weights of a model it calls are read when it
            is first compiled: build a new function after they change.

    Returns:
        ``gradient(x, *args) -> (value, gradient with respect to x)``, with the types
        `input_gradient` returns.
    """
    if _backend() == "jax":
        import jax

        compiled = jax.jit(jax.value_and_grad(fn))

        def jax_gradient(x, *args):
            value, grad = compiled(np.asarray(x, dtype="float32"), *args)
            return float(value), np.asarray(grad)

        return jax_gradient
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def tf_compiled(x, *args):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x, *args)
        return value, tape.gradient(value, x)

    def tf_gradient(x, *args):
        value, grad = tf_compiled(tf.convert_to_tensor(np.asarray(x, dtype="float32")),
                                  *(tf.convert_to_tensor(a) for a in args))
        return float(value), grad.numpy()

    return tf_gradient


def layer_gradient(model: keras.Model, layer: str, fn: Callable, x) -> tuple[float, np.ndarray, np.ndarray]:
    """A scalar function of a model's output, and its gradient with respect to one layer's output.

    What Grad-CAM needs: the feature map of `layer` and how the function moves with it. On
    TensorFlow a model with two outputs (the layer's and the network's) runs under a tape, which
    works for any layer. JAX differentiates functions, not tensors inside one, so there the model is
    split in two at the layer (input -> layer, layer -> output) and the second half differentiated:
    the layer must be a cut point, one that every path from input to output passes through (the
    output of a ResNet block, not a convolution inside it beside the shortcut).

    Args:
        model: a functional model with one input.
        layer: the name of one of its layers.
        fn: maps the model's output tensor to a scalar tensor (built from `keras.ops`).
        x: a batch of inputs.

    Returns:
        ``(value, activations, gradient)``: a float, and two float32 arrays shaped like the
        layer's output for `x`.

    Raises:
        ValueError: on JAX, when `layer` is not a cut point (naming the feature-map layers that are).
    """
    x = np.asarray(x, dtype="float32")
    target = model.get_layer(layer)
    if _backend() == "jax":
        import jax

        head = _head_model(model, target)
        body = keras.Model(model.input, target.output)
        activations = keras.ops.convert_to_numpy(body(x, training=False)).astype("float32")
        value, grad = jax.value_and_grad(lambda a: fn(head(a, training=False)))(activations)
        return float(value), activations, np.asarray(grad)
    import tensorflow as tf

    probe = keras.Model(model.input, [target.output, model.output])
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        # Watching the input records every op after it, so a layer with no trainable variable
        # upstream (the Preprocess layer) still gets a gradient.
        tape.watch(x)
        activations, outputs = probe(x, training=False)
        value = fn(outputs)
    grad = tape.gradient(value, activations)
    return float(value), activations.numpy(), grad.numpy()


def _head_model(model: keras.Model, target) -> keras.Model:
    """The part of `model` from `target`'s output to the model's output."""
    try:
        return keras.Model(target.output, model.output)
    except ValueError as error:
        cut_points = []
        for candidate in model.layers:
            try:
                if len(candidate.output.shape) == 4:
                    keras.Model(candidate.output, model.output)
                    cut_points.append(candidate.name)
            except (ValueError, AttributeError):
                continue
        raise ValueError(
            f"On the JAX backend the gradient with respect to a layer needs a layer that every path "
            f"from input to output passes through; {target.name!r} of model {model.name!r} is "
            f"bypassed (e.g. by a shortcut). Layers that work: {', '.join(cut_points[-8:]) or 'none'}"
            f"{' (the last 8)' if len(cut_points) > 8 else ''}. Or use the TensorFlow backend, where "
            f"any layer works."
        ) from error


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
