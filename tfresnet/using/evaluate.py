"""A finished run's model on any dataset the data layer loads: ``tfresnet evaluate``.

``tfresnet evaluate RUN_DIR --data NAME [--data-dir DIR] [--split test] [--tta flip] [--set key=value ...]``

The data are loaded at the model's input size with the run's own ``resize_mode``, without
augmentation or shuffling. Classes are matched **by name**, never by position:

- the same names in another order: each label is remapped to the run's index of its name, and
  the result says so (``class_mapping``);
- the data hold only some of the run's classes: evaluated on those, with a note naming the run
  classes absent from the data (the model may still predict them: such predictions count as
  errors, and the confusion matrix keeps the run's classes);
- the data hold a class the run does not know: refused, listing the names on each side only,
  since no prediction of the model could ever be right for it.

``--tta flip|flip+crops`` averages the softmax over mirrored and cropped views of each image
(`tfresnet.using.tta`); a mode with a mirror is refused for data a mirror changes the class of
(MNIST's digits).

Writes ``RUN_DIR/eval-<data>-<split>/``: ``metrics.json`` (as the trainer's, plus what was
matched, the TTA mode and its views, the seconds the pass took, ``top_losses`` and
``most_confused``), ``confusion_matrix.png`` and ``misclassified.png``
(`tfresnet.training.report`), and ``top_losses.png``, ``most_confused.png`` and
``most_confused.csv`` (`tfresnet.using.interpret`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

from tfresnet.runs import RunDir
from tfresnet.using import interpret, tta

__all__ = ["add_arguments", "evaluate", "match_classes", "run"]

SPLITS = ("train", "validation", "test")
# `tfresnet.data.load` options `--set` may change; anything else goes to the dataset's loader
# (``label=species``, ``test_split=0.2``...), which rejects what it does not know.
_LOAD_KEYS = ("batch_size", "validation_split", "seed", "image_size", "resize", "drop_empty_classes")


def match_classes(run_names, data_names) -> tuple[list[int], list[str]]:
    """Maps the data's class ids onto the run's by name.

    Returns:
        ``(mapping, notes)``: ``mapping[data_id]`` is the run's id of the same name; `notes`
        says what differs (another order, run classes absent from the data), empty when the
        lists are equal.

    Raises:
        ValueError: when the data have a class the run lacks, listing the differences.
    """
    run_names, data_names = [str(n) for n in run_names], [str(n) for n in data_names]
    unknown = [n for n in data_names if n not in run_names]
    absent = [n for n in run_names if n not in data_names]
    if unknown:
        raise ValueError(
            f"The data's classes do not match the run's. Only in the data ({len(unknown)}): "
            f"{', '.join(unknown)}. Only in the run ({len(absent)}): {', '.join(absent) or 'none'}. "
            f"The model cannot predict a class it was not trained on; evaluate on data whose "
            f"classes are among the run's {len(run_names)}."
        )
    mapping = [run_names.index(n) for n in data_names]
    notes = []
    if mapping != sorted(mapping):
        notes.append("the data list the classes in another order: labels remapped to the run's by name")
    if absent:
        notes.append(
            f"{len(absent)} of the run's {len(run_names)} classes are not in the data "
            f"({', '.join(absent)}): evaluated on the other {len(data_names)}; predictions of the "
            f"absent ones count as errors"
        )
    return mapping, notes


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word: label=species


def _parse_sets(items) -> dict:
    values = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"--set takes key=value. Received {item!r}")
        key, text = item.split("=", 1)
        values[key.strip()] = _parse_value(text)
    return values


def _out_name(data: str, split: str) -> str:
    # folder:/data/flowers -> eval-folder_data_flowers-test: one path component.
    return "eval-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", data).strip("_") + f"-{split}"


def _load_args(config, model, data: str, data_dir: str | None, options: dict | None) -> dict:
    """`tfresnet.data.load`'s arguments: the model's input, the run's resize mode and, for the
    run's own dataset, its folder, options, validation fraction and seed (so splits are the run's)."""
    own = config.split_args() if data == config.data else {"data_dir": None, "seed": config.seed}
    image_size = tuple(model.input_shape[1:3])
    return {
        **own,
        "data_dir": data_dir if data_dir is not None else own["data_dir"],
        "image_size": image_size if None not in image_size else config.image_size,
        "resize": config.resize_mode,
        "batch_size": config.batch_size,
        **dict(options or {}),
    }


def _split_of(bundle, data: str, split: str, channels: int):
    dataset = bundle.splits.get(split)
    if dataset is None:
        raise ValueError(
            f"Dataset {data!r} has no {split!r} split ({bundle.absent.get(split) or 'not made'}). "
            f"Its splits: {', '.join(bundle.splits)}."
        )
    if bundle.input_shape[-1] != channels:
        raise ValueError(
            f"The run's model takes {channels}-channel images; {data!r} has {bundle.input_shape[-1]}-channel ones."
        )
    return dataset


def _write(out_dir: str, metrics: dict, highest: dict, run_names: list[str], verbose: bool) -> dict:
    """Writes metrics.json and the figures (their titles name `metrics["split"]`); returns the public metrics."""
    import numpy as np
    import pandas as pd

    from tfresnet.training import report

    os.makedirs(out_dir, exist_ok=True)
    figures = [os.path.basename(p) for p in report.plot_run(out_dir, pd.DataFrame(), metrics, run_names)]
    figures += interpret.write(out_dir, metrics, highest)
    RunDir(out_dir).write_metrics(metrics)  # as a run's metrics.json: without the misclassified images
    public = {k: v for k, v in metrics.items() if k != "misclassified"}
    if verbose:
        for note in metrics["notes"]:
            print(f"note: {note}")
        scored = [a for a in public["per_class_accuracy"] if a is not None]
        views = len(metrics["tta"]["views"])
        with_tta = f" with --tta {metrics['tta']['mode']} ({views} views)" if views > 1 else ""
        print(f"{metrics['data']} {metrics['split']}: accuracy {public['accuracy']:.4f} on "
              f"{public['examples']:,} images{with_tta}, loss {public['loss']:.4f}; lowest class accuracy "
              f"{np.min(scored):.4f}; {metrics['seconds']:.1f} s")
        for pair in metrics["most_confused"][:3]:
            print(f"  confused: {pair['count']} {pair['true']} as {pair['predicted']}")
        print(f"wrote {out_dir}/metrics.json, {', '.join(figures)}")
    return public


def evaluate(run_dir: str, data: str, *, data_dir: str | None = None, split: str = "test",
             options: dict | None = None, out_dir: str | None = None, verbose: bool = True,
             tta_mode: str = "none") -> dict:
    """Evaluates a run's model on a dataset, classes matched by name.

    Args:
        run_dir: a finished run directory (``model.keras``, ``class_names.json``, ``config.json``).
        data: a `tfresnet.data.load` name (``mnist``, ``folder:PATH``...).
        data_dir: the dataset's folder (default: ``$TFRESNET_DATA_DIR``; for the run's own
            dataset, the run's ``data_dir``).
        split: ``"test"``, ``"validation"`` or ``"train"``.
        options: `tfresnet.data.load` options (``batch_size``, ``validation_split``...) and
            the dataset's own (``label="species"``); for the run's own dataset, its
            ``data_args``, ``validation_split`` and ``seed`` are the defaults, so
            ``split="validation"`` is the run's validation set.
        out_dir: where to write (default ``RUN_DIR/eval-<data>-<split>``).
        verbose: print the notes and a one-line result.
        tta_mode: test-time augmentation, a key of `tfresnet.using.tta.TTA_MODES`
            (``"none"``, ``"flip"``, ``"flip+crops"``).

    Returns:
        The metrics written to ``metrics.json`` (`tfresnet.training.report.evaluate`'s, with
        ``data``, ``split``, ``class_names``, ``class_mapping``, ``notes``, ``tta`` (mode and
        views), ``seconds`` (the pass over the split, decoding included), ``top_losses`` and
        ``most_confused`` (`tfresnet.using.interpret`)).

    Raises:
        ValueError: for an unknown split or one the dataset lacks, images whose channels
            differ from the model's, classes the run does not know, an unknown TTA mode or one
            that mirrors data a mirror changes the class of.
        FileNotFoundError: for an incomplete run directory or missing data.
    """
    import tensorflow as tf

    from tfresnet import data as data_lib
    from tfresnet.training import report

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received split={split!r}")
    tta_notes = tta.check_tta(tta_mode, data)
    run = RunDir(run_dir).require_finished()
    config, run_names = run.config, run.class_names
    if config.data != data:  # a digit model scored on a folder of digits: its own data say no mirrors
        tta.check_tta(tta_mode, config.data)
    model = run.load_model()
    bundle = data_lib.load(data, augment=None, shuffle=False, verbose=0,
                           **_load_args(config, model, data, data_dir, options))
    dataset = _split_of(bundle, data, split, model.input_shape[-1])
    mapping, notes = match_classes(run_names, bundle.class_names)
    if mapping != list(range(len(mapping))):
        table = tf.constant(mapping, tf.int32)
        dataset = dataset.map(lambda x, y: (x, tf.gather(table, tf.cast(y, tf.int32))))

    start = time.perf_counter()
    metrics = report.evaluate(model if tta_mode == "none" else tta.tta_model(model, tta_mode), dataset,
                              len(run_names), keep_top_losses=interpret.TOP_LOSSES)
    seconds = time.perf_counter() - start
    highest = metrics.pop("highest_losses")
    metrics.update({
        "run_dir": run.path, "data": data, "split": split, "model": config.model,
        "class_names": list(run_names),
        "class_mapping": {str(name): run_id for name, run_id in zip(bundle.class_names, mapping)},
        "notes": notes + tta_notes, "skipped_files": bundle.num_skipped,
        "tta": tta.describe(tta_mode), "seconds": round(seconds, 3),
        "top_losses": interpret.top_losses(highest, list(run_names)),
        "most_confused": interpret.most_confused(metrics["confusion_matrix"], list(run_names)),
    })
    return _write(out_dir or run.file(_out_name(data, split)), metrics, highest, list(run_names), verbose)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``tfresnet evaluate`` arguments."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="finished training run directory")
    parser.add_argument("--data", required=True, help="dataset name: mnist, mnist-sample, oxford_iiit_pet, "
                        "cats_vs_dogs, folder:PATH")
    parser.add_argument("--data-dir", default=None, help="the dataset's folder (default: $TFRESNET_DATA_DIR)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate (default: test)")
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help=f"data option (repeatable): {', '.join(_LOAD_KEYS)} or the dataset's own, "
                             f"e.g. label=species")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/eval-DATA-SPLIT)")
    parser.add_argument("--tta", default="none", choices=list(tta.TTA_MODES),
                        help="test-time augmentation: average the softmax over the image and its mirror "
                             "(flip) or also four corner crops and their mirrors (flip+crops, 10 views); "
                             "refused for digits (default: none)")


def run(args: argparse.Namespace) -> int:
    """Runs ``tfresnet evaluate``."""
    evaluate(args.run_dir, args.data, data_dir=args.data_dir, split=args.split,
             options=_parse_sets(args.options), out_dir=args.out, tta_mode=args.tta)
    return 0
