"""What one batch norm costs on this CPU, against the passes over memory it needs.

ResNet-50's bfloat16 step waits on batch norm more than on anything but convolutions (the
throughput suite's ``--profile`` timeline: docs/benchmarks.md, "What the bfloat16 step waits
for"). This times TensorFlow's kernels on one activation tensor (default ResNet-50's conv2 output
at batch 32, 32x56x56x256), once with each intra-op thread count (each count in its own process:
TensorFlow fixes its thread pools at start):

- ``fused forward``: `FusedBatchNormV3` in training mode (batch statistics, then normalise);
- ``fused forward+backward``: the same and its gradient (`FusedBatchNormGradV3`);
- ``reduction pass``: `reduce_sum` over all but the channels, in the tensor's dtype (one read);
- ``whole-tensor sum``: `reduce_sum` to one number: one read at the rate memory allows;
- ``channel sums as a matmul``: the reduction pass as a ones row times the tensor seen as (N*H*W, C);
- ``built from parts``: batch statistics as two such matmuls (of x and x*x), then the
  normalising pass: the best training-mode forward TensorFlow's public ops give short of the fused one;
- ``normalising pass``: `FusedBatchNormV3` in inference mode, statistics given (a read and a write);
- ``add + ReLU``: the residual add and its ReLU (two reads and a write).

A training-mode forward needs at least one read for the statistics and one read and write to
normalise, so the whole-tensor sum plus the normalising pass is the floor any kernel could reach;
the threads columns say how much a second core buys each.

    python benchmarks/batchnorm_kernels.py                         # bfloat16 and float32, 1 and 2 threads: ~1 min
    python benchmarks/batchnorm_kernels.py --dtypes bfloat16 --shape 32,28,28,512

Writes JSON (default benchmarks/results/batchnorm_kernels.json) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPEATS = 7  # the median is kept; the first call, which traces, is not timed
KERNELS = ("fused forward", "fused forward+backward", "reduction pass", "whole-tensor sum",
           "channel sums as a matmul", "built from parts", "normalising pass", "add + ReLU")


def _kernels(shape, dtype):
    import tensorflow as tf

    x = tf.Variable(tf.cast(tf.random.stateless_normal(shape, (0, 1)), dtype))
    dy = tf.cast(tf.random.stateless_normal(shape, (0, 2)), dtype)
    channels = shape[-1]
    gamma, beta = tf.Variable(tf.ones([channels])), tf.Variable(tf.zeros([channels]))

    def norm(training, mean=None, variance=None):
        stats = {} if training else {"mean": tf.zeros([channels]) if mean is None else mean,
                                     "variance": tf.ones([channels]) if variance is None else variance}
        return tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=1.001e-5, is_training=training, **stats)[0]

    count = shape[0] * shape[1] * shape[2]
    ones = tf.ones([1, count], dtype)

    def rows():  # inside each function, so every call reads the variable
        return tf.reshape(x, [count, channels])

    def channel_sums(value):
        return tf.cast(tf.matmul(ones, value)[0], tf.float32)

    def from_parts():
        flat = rows()
        mean = channel_sums(flat) / count
        variance = channel_sums(flat * flat) / count - mean * mean
        return norm(False, mean, variance)

    def forward_backward():
        with tf.GradientTape() as tape:
            y = norm(True)
        return tape.gradient(y, [x, gamma, beta], output_gradients=dy)[0]

    def corner(fn):  # one element out, so the timed call waits for the kernel without copying its output
        return tf.function(lambda: tf.cast(tf.reshape(fn(), [-1])[0], tf.float32))

    return {"fused forward": corner(lambda: norm(True)),
            "fused forward+backward": corner(forward_backward),
            "reduction pass": corner(lambda: tf.reduce_sum(x, axis=[0, 1, 2])),
            "whole-tensor sum": corner(lambda: tf.reduce_sum(x)),
            "channel sums as a matmul": corner(lambda: channel_sums(rows())),
            "built from parts": corner(from_parts),
            "normalising pass": corner(lambda: norm(False)),
            "add + ReLU": corner(lambda: tf.nn.relu(x + dy))}


def measure_here(shape, dtype: str) -> dict:
    """Milliseconds of each kernel in this process (median of `REPEATS`)."""
    result = {}
    for name, fn in _kernels(shape, dtype).items():
        fn().numpy()
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            fn().numpy()
            seconds.append(time.perf_counter() - start)
        result[name] = 1e3 * statistics.median(seconds)
    return result


def _child(args) -> int:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(json.dumps(measure_here(args.shape, args.dtypes[0])))
    return 0


def _measure(shape, dtype: str, threads: int) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(threads),
               "--dtypes", dtype, "--shape", ",".join(map(str, shape))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _shape(text: str) -> list[int]:
    try:
        shape = [int(part) for part in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--shape takes N,H,W,C, four positive integers. Received {text!r}")
    return shape


def main(argv=None) -> int:
    from tfresnet.bench.common import markdown_table, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=_shape, default=[32, 56, 56, 256], help="N,H,W,C")
    parser.add_argument("--dtypes", type=lambda s: s.split(","), default=["bfloat16", "float32"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "batchnorm_kernels.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.threads = args.threads[0]
        return _child(args)
    rows = []
    for dtype in args.dtypes:
        ms = {threads: _measure(args.shape, dtype, threads) for threads in args.threads}
        for kernel in KERNELS:
            rows.append({"dtype": dtype, "kernel": kernel, **{f"ms_{t}": ms[t][kernel] for t in args.threads}})
        write_result(args.out, "batchnorm_kernels", {"shape": args.shape, "rows": rows})
    columns = [("dtype", "dtype"), ("kernel", "kernel"), *[(f"ms_{t}", f"ms, {t} thread(s)") for t in args.threads]]
    print(f"shape {'x'.join(map(str, args.shape))}")
    print(markdown_table(rows, columns))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
