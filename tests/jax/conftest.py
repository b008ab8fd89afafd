"""tests/jax runs only in a process with ``KERAS_BACKEND=jax`` (tests/test_jax_backend.py
starts one); under TensorFlow nothing here is collected."""

import os

if os.environ.get("KERAS_BACKEND") != "jax":
    collect_ignore_glob = ["test_*.py"]
