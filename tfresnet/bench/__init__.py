"""Benchmarks: training throughput and efficiency against plain Keras, time to accuracy, serving.

`tfresnet bench --suite all` runs them (`tfresnet.bench.cli`); `benchmarks/*.py` are the same
suites as scripts. Each suite writes a JSON file and prints Markdown tables. They are measured on
demand and never part of the test suite's assertions: a test only checks that ``--smoke`` runs
and writes well-formed JSON.
"""
