"""The one place tfresnet touches TensorFlow internals (`tensorflow.python`).

Checked against TensorFlow 2.21.0 (`tf.__version__`); `tests/test_tf_compat.py` fails if the
registry below changes. The tuner uses it (`tfresnet.tuning.tuners`, between trials), and the
throughput benchmark reads profiler traces with it (`tfresnet.bench.trace`).
"""

from __future__ import annotations

__all__ = ["CHECKED_TENSORFLOW_VERSION", "custom_gradient_names", "forget_custom_gradients", "op_determinism_enabled",
           "read_xspace", "tf_op_events"]

CHECKED_TENSORFLOW_VERSION = "2.21.0"

# `@tf.custom_gradient` registers each graph-mode call's gradient under this prefix plus a uid
# (tensorflow/python/ops/custom_gradient.py, 2.21).
_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def custom_gradient_names() -> set[str]:
    """The names `@tf.custom_gradient` has registered in TensorFlow's global gradient registry."""
    # No public API lists the registry (2.21): `ops.gradient_registry.list()` is the internal one.
    from tensorflow.python.framework import ops

    return {name for name in ops.gradient_registry.list() if name.startswith(_CUSTOM_GRADIENT_PREFIX)}


def forget_custom_gradients(before: set[str] | None) -> None:
    """Drops the ``@tf.custom_gradient`` functions registered since `before` was taken.

    The leak behind a search's growing RAM: every graph-mode call of a ``@tf.custom_gradient``
    function registers its gradient under a new name in TensorFlow's global gradient registry,
    which is never cleared, and the registered closure holds the whole traced graph. Keras'
    TensorFlow trainer makes such a call in every train step it traces (the replica context's
    `all_reduce` of the gradients), so each trial's train function -- about 1,400 graph
    operations and 8 MiB for the small MNIST ConvNet -- outlived the trial, whatever
    `clear_session` did. Measured with ``benchmarks/tuning_memory.py``. Only names registered
    since `before` are dropped: their graphs belong to a model nothing uses any more.
    """
    if before is None:
        return
    from tensorflow.python.framework import ops

    registry = ops.gradient_registry._registry  # no public way to unregister (2.21)
    for name in custom_gradient_names() - before:
        registry.pop(name, None)


def op_determinism_enabled() -> bool:
    """Whether `tf.config.experimental.enable_op_determinism` is in force in this process."""
    # `tf.config.experimental` can switch it on but not say whether it is on (2.21); this is the
    # flag that switch sets.
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


def read_xspace(path: str):
    """A TensorFlow profiler trace (``*.xplane.pb``, what ``tf.profiler.experimental`` writes) as
    its XSpace protobuf message."""
    # The schema ships with TensorFlow under its TSL tree (2.21), with no public import path;
    # TensorBoard's profile plugin reads the same file with the same message.
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    return space


def tf_op_events(space):
    """``(op name, op type, start, duration)`` of every TensorFlow op the host executed in a trace.

    Times are in picoseconds; starts share one clock across the trace's threads (each line's
    ``timestamp_ns`` plus the event's ``offset_ps``), so events on two threads can be laid side by side.

    TensorFlow's executor names each op event ``"scope/name:Type"`` on its compute threads
    (`tf_Compute`, tf.data's threads); the events of the Python thread (eager calls, whole
    ``tf.function`` calls) and the thread pools' own bookkeeping (``ThreadpoolListener::…``,
    ``Iterator::…``) hold other events' time and are left out.
    """
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if "::" in name or ":" not in name:
                    continue
                op_name, _, op_type = name.rpartition(":")
                yield op_name, op_type.strip(), line.timestamp_ns * 1000 + event.offset_ps, event.duration_ps
