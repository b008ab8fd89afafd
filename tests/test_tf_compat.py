"""The TensorFlow internals the tuner relies on still behave as `tfresnet.tf_compat` expects."""

import tensorflow as tf

from tfresnet import tf_compat


def test_custom_gradients_a_traced_function_registers_are_listed_and_forgotten():
    @tf.custom_gradient
    def double(x):
        return 2 * x, lambda dy: 2 * dy

    before = tf_compat.custom_gradient_names()
    tf.function(double).get_concrete_function(tf.TensorSpec([], tf.float32))
    added = tf_compat.custom_gradient_names() - before
    assert len(added) == 1  # graph-mode tracing registered one gradient, never cleared by TF
    tf_compat.forget_custom_gradients(before)
    assert tf_compat.custom_gradient_names() == before
    tf_compat.forget_custom_gradients(None)  # nothing taken before: nothing dropped
    assert tf_compat.custom_gradient_names() == before
