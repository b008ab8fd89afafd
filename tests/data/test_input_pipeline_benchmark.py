"""`benchmarks/input_pipeline.py --smoke`: every measurement of both augmentation paths, saved as JSON,
and the pipeline's cache of decoded images holding uint8 pixels."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np
import tensorflow as tf

from tests.data import fakes
from tfresnet.data.pipeline import make_dataset
from tfresnet.data.sources import SplitSource

BENCHMARK = pathlib.Path(__file__).parents[2] / "benchmarks" / "input_pipeline.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("input_pipeline_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_smoke_run_measures_both_paths_and_the_cores_they_need(tmp_path, capsys):
    root = fakes.write_class_folders(tmp_path / "images", {"a": 10, "b": 10})
    out = tmp_path / "result.json"
    assert _benchmark().main(["--smoke", "--data", f"folder:{root}", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["augment_on"]) for r in rows] == [("convnet", "data"), ("convnet", "model")]
    for r in rows:
        assert min(r["pipeline"], r["pipeline_one_core"], r["train_step"], r["whole_step"]) > 0, r
        assert r["cores_per_1000_images_per_s"] == 1000 / r["pipeline_one_core"]
        assert r["whole_over_train_step"] == r["whole_step"] / r["train_step"]
    printed = capsys.readouterr().out
    assert "cores/1k" in printed and printed.count("convnet") == 2
    # --paths measures only the path asked for.
    assert _benchmark().main(["--smoke", "--data", f"folder:{root}", "--out", str(out), "--paths", "model"]) == 0
    assert [r["augment_on"] for r in json.loads(out.read_text())["rows"]] == ["model"]


def test_the_file_cache_holds_uint8_pixels_not_float32(tmp_path):
    paths = sorted(fakes.write_class_folders(tmp_path / "images", {"a": 6, "b": 6}).glob("*/*.jpg"))
    labels = np.arange(len(paths), dtype=np.int32) % 2
    split = SplitSource(tf.data.Dataset.from_tensor_slices(([str(p) for p in paths], labels)), "path",
                        labels, "train", "fingerprint")
    ds = make_dataset(split, training=False, channels=3, image_size=(32, 32), batch_size=4,
                      cache=str(tmp_path / "cache"))
    images = np.concatenate([x.numpy() for x, _ in ds])
    assert images.dtype == np.float32 and images.shape == (12, 32, 32, 3)  # what the model gets
    cached = sum(f.stat().st_size for f in (tmp_path / "cache").iterdir())
    pixels = images.size  # one byte each as uint8, four as float32
    assert pixels <= cached < 2 * pixels, (cached, pixels)


def test_step_and_whole_step_alternate_so_a_rising_rate_favours_neither(monkeypatch):
    """Timed one after the other, a rate still rising after warm-up made the whole step look faster
    than the step alone; in the order step, whole, whole, step the drift cancels."""
    import contextlib
    import dataclasses
    import types

    module = _benchmark()
    rising = iter(range(1, 100))  # each timing faster than the one before
    monkeypatch.setattr(module, "precision_policy", lambda config: contextlib.nullcontext())
    monkeypatch.setattr(module, "fit_rate", lambda *args: float(next(rising)))
    model = types.SimpleNamespace(count_params=lambda: 1, jit_compile=False)
    session = types.SimpleNamespace(config=types.SimpleNamespace(batch_size=4), build=lambda: model,
                                    compile=lambda m: None, train=tf.data.Dataset.range(3))
    result = module.measure_steps(session, dataclasses.replace(module.Sizes(), rounds=2))
    assert result["train_step_rounds"] == [1.0, 4.0] and result["whole_step_rounds"] == [2.0, 3.0]
    assert result["train_step"] == result["whole_step"] == 2.5
