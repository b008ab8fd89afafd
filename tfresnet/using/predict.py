"""Top-K predictions for image files, through a run's ``model.keras``, its SavedModel or a `.keras` file.

``tfresnet predict RUN_DIR|EXPORT_DIR|MODEL.keras IMAGE... [--top K] [--json] [--csv PATH] [--class-names FILE]
[--tta flip]``

A `.keras` file outside a run directory takes its class names from ``--class-names FILE`` (a
JSON list, or one name per line), else a ``class_names.json`` beside it; a 1000-output model
with neither gets ImageNet's names (as keras' ``decode_predictions`` assumes), so an ImageNet
classifier says ``tabby``, not ``281``.

Each file goes through the data layer's own checks (`tfresnet.data.images.check_image`), so
every format training accepts works here too, converted ones included (GIF, CMYK JPEG, PNG named
``.jpg``...). It is then decoded and resized exactly as the training pipeline does it
(`tfresnet.export.decode_images`: bilinear, rounded to uint8) to the model's input size, with
the run's own ``resize_mode`` from its ``config.json`` (``resize`` stretches, ``crop`` and
``pad`` keep the aspect ratio); a SavedModel beside no run config (not under
``RUN_DIR/export/``) gets ``resize``, the trainer's default. A file that cannot be read gets a
row with the reason instead of stopping the others.

A folder argument stands for every file under it, recursively (hidden files and folders left
out), in sorted order: files that are not images get a row saying so, so the table accounts for
everything in the folder. With a folder, the rows also go to ``predictions.csv`` where the model
lives (`csv_folder`: the run directory, else the folder beside the export or the `.keras` file),
or to ``--csv PATH``.

``--tta flip|flip+crops`` averages the probabilities over mirrored and cropped views of each image
(`tfresnet.using.tta`). A run (or an export inside one) names the data it was trained on, and a
mode with a mirror is refused where a mirror changes the class (MNIST's digits); for a `.keras`
file nothing is known of its data, so it runs, with a note saying so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable

import numpy as np

from tfresnet.checks import number
from tfresnet.files import write_atomic
from tfresnet.runs import RunDir, load_keras
from tfresnet.using import tta

__all__ = ["Classifier", "add_arguments", "csv_folder", "load_classifier", "predict", "run"]

_BATCH = 32
_DEFAULT_CSV = "predictions.csv"


@dataclasses.dataclass
class Classifier:
    """A trained classifier ready for uint8 images, whichever file it came from.

    Attributes:
        source: the run or export directory.
        kind: ``"keras"`` (``model.keras``) or ``"saved_model"``.
        image_size: (height, width) the model takes.
        channels: 1 or 3.
        class_names: one per output.
        resize_mode: how images are fitted to `image_size` (see `tfresnet.export.RESIZE_MODES`).
        probabilities: uint8 ``[N, H, W, C]`` -> float32 ``[N, K]``.
        data: the registry name of the dataset the model was trained on (from the run's
            config), or None when unknown (a `.keras` file, an export outside a run).
    """

    source: str
    kind: str
    image_size: tuple[int, int]
    channels: int
    class_names: list[str]
    resize_mode: str
    probabilities: Callable[[np.ndarray], np.ndarray]
    data: str | None = None


def _load_run(path: str) -> Classifier:
    run = RunDir(path).require_finished()
    config, class_names = run.config, run.class_names
    model = run.load_model()
    _, height, width, channels = tuple(model.input_shape)
    if height is None or width is None:  # a size-agnostic model: the run's image size rules
        height = width = config.image_size
    if height is None:
        raise ValueError(f"{path}: the model takes any image size and its config.json sets no image_size.")

    def probabilities(images):
        return np.asarray(model(images.astype("float32"), training=False), dtype="float32")

    return Classifier(path, "keras", (int(height), int(width)), int(channels), class_names,
                      config.resize_mode, probabilities, config.data)


def _run_of_export(path: str) -> RunDir | None:
    """The run directory a SavedModel sits in (``RUN_DIR/export/saved_model``), if any."""
    run = RunDir(os.path.dirname(os.path.dirname(os.path.abspath(path))))
    return run if run.is_configured() else None


def _load_export(path: str) -> Classifier:
    from tfresnet.export import load_exported

    exported = load_exported(path)
    # RUN_DIR/export/saved_model: the run's config says how its images were fitted.
    run = _run_of_export(path)

    def probabilities(images):
        return np.asarray(exported.predict(images)["probabilities"], dtype="float32")

    return Classifier(path, "saved_model", tuple(exported.image_size), int(exported.channels),
                      list(exported.class_names), run.config.resize_mode if run else "resize", probabilities,
                      run.config.data if run else None)


def _load_keras_file(path: str, class_names_file: str | None = None) -> Classifier:
    from tfresnet.inspect.classnames import SIBLING_FILE, class_names_for, read_class_names

    model = load_keras(path)
    _, height, width, channels = tuple(model.input_shape)
    if height is None or width is None:
        raise ValueError(f"{path}: the model takes any image size; predict needs a fixed input size.")
    sibling = os.path.join(os.path.dirname(os.path.abspath(path)), SIBLING_FILE)
    names_file = class_names_file or (sibling if os.path.isfile(sibling) else None)
    names = class_names_for(int(model.output_shape[-1]),
                            read_class_names(names_file) if names_file else None,
                            "file" if names_file else None, where=names_file or "")
    for note in names.notes:
        print(f"note: {note}", file=sys.stderr)

    def probabilities(images):
        return np.asarray(model(images.astype("float32"), training=False), dtype="float32")

    return Classifier(path, "keras", (int(height), int(width)), int(channels), names.names, "resize",
                      probabilities)


# The file that marks a directory as a run or as an export, and how each is loaded. A run
# directory comes first: its model.keras is the model itself, its SavedModel a copy.
_LOADERS = {RunDir.MODEL: _load_run, "saved_model.pb": _load_export}
_SUPPORTED = "a run directory (model.keras), a SavedModel export directory (saved_model.pb) or a .keras file"
# Model files predict does not run, named in its error (their exports run through their own runtimes).
_UNSUPPORTED = {".tflite": "TFLite", ".onnx": "ONNX", ".h5": "HDF5", ".pb": "frozen graph", ".pt": "PyTorch"}


def _unsupported(source: str) -> str:
    ext = os.path.splitext(source)[1].lower()
    kind = f"{_UNSUPPORTED[ext]} ({ext})" if ext in _UNSUPPORTED else f"a {ext or 'extensionless'} file"
    return (f"{kind} is not a format predict supports (TFLite and ONNX exports run through their own "
            f"runtimes). Supported: {_SUPPORTED}.")


def load_classifier(source: str, *, class_names: str | None = None) -> Classifier:
    """Loads a run directory (``model.keras``, safe mode on), an export directory (SavedModel)
    or a `.keras` file (its class names from `class_names`, a file beside it, or ImageNet's).

    Raises:
        FileNotFoundError: if `source` does not exist, or is a folder that is neither a run nor an export.
        ValueError: for a model file of an unsupported format, naming the supported ones.
    """
    source = os.fspath(source)
    if source.endswith(".keras") and os.path.isfile(source):
        return _load_keras_file(source, class_names)
    if os.path.isfile(source):
        raise ValueError(f"{source} is a file predict cannot use: {_unsupported(source)}")
    for marker, loader in _LOADERS.items():
        if os.path.isfile(os.path.join(source, marker)):
            return loader(source)
    if not os.path.isdir(source):
        if os.path.splitext(source)[1].lower() in _UNSUPPORTED:
            raise FileNotFoundError(f"{source} does not exist, and {_unsupported(source)}")
        raise FileNotFoundError(f"{source} does not exist: give {_SUPPORTED}.")
    raise FileNotFoundError(
        f"{source} holds neither {' nor '.join(_LOADERS)}: give a training run directory "
        f"(tfresnet train writes model.keras) or a SavedModel export (e.g. RUN_DIR/export/saved_model)."
    )


def csv_folder(source: str) -> str:
    """Where ``tfresnet predict`` writes ``predictions.csv`` for a model `source`: where it lives.

    A run directory itself; for a SavedModel inside a run (``RUN_DIR/export/saved_model``), that
    run; for another export folder or a `.keras` file, the folder that holds it (never inside a
    SavedModel, which the next export replaces).
    """
    source = os.path.abspath(os.fspath(source))
    if os.path.isdir(source) and os.path.isfile(os.path.join(source, RunDir.MODEL)):
        return source
    if os.path.isdir(source) and (run := _run_of_export(source)):
        return run.path
    return os.path.dirname(source)


def _expand(paths: Iterable[str]) -> tuple[list[str], bool]:
    """Files to predict, folders walked recursively; and whether any folder was given."""
    files, any_folder = [], False
    for given in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        path = os.fspath(given)
        if not os.path.isdir(path):
            files.append(path)  # a missing file gets an error row, like any unreadable one
            continue
        any_folder = True
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
    return files, any_folder


class _Decoder:
    """Encoded file -> uint8 pixels at the model's size, as the training pipeline makes them."""

    def __init__(self, classifier: Classifier):
        import tensorflow as tf

        from tfresnet.data.images import default_cache_dir
        from tfresnet.export import decode_images

        self._convert_dir = os.path.join(default_cache_dir(), "converted")  # the data layer's copies
        self._decode = tf.function(
            lambda data: decode_images(data, classifier.image_size, classifier.channels, classifier.resize_mode),
            input_signature=[tf.TensorSpec([None], tf.string)],
        )

    def __call__(self, path: str) -> np.ndarray:
        """Raises ValueError with the reason for a file that cannot be used."""
        import tensorflow as tf

        from tfresnet.data.images import check_image

        check = check_image(path, convert_dir=self._convert_dir)
        if not check.ok:
            raise ValueError(check.reason)
        with open(check.decode_path, "rb") as f:
            data = f.read()
        try:
            return self._decode(tf.constant([data]))[0].numpy()
        except tf.errors.InvalidArgumentError as err:
            raise ValueError(err.message.strip().splitlines()[0]) from None


def _check_top(top) -> int:
    return number(top, "top", integer=True)


def _progress(total: int, stream) -> Callable[[int], None]:
    """A one-line counter on a terminal; nothing in a pipe or a file."""
    from tfresnet.console import is_terminal

    if not is_terminal(stream) or total < 2:
        return lambda done: None

    def show(done):
        stream.write(f"\rpredicting {done}/{total} files")
        if done == total:
            stream.write("\n")
        stream.flush()

    return show


def _predict(classifier: Classifier, files: list[str], top: int, progress: Callable[[int], None],
             tta_mode: str = "none"):
    """One row per file: path, top-K classes and probabilities, error; `tta_mode` averages over views."""
    import pandas as pd

    k = min(top, len(classifier.class_names))
    decode = _Decoder(classifier)
    rows = [{"path": path, "error": ""} for path in files]
    pending = []  # (row index, pixels) waiting for a full batch

    def flush():
        if not pending:
            return
        batch = np.stack([pixels for _, pixels in pending])
        probs = (classifier.probabilities(batch) if tta_mode == "none"
                 else tta.tta_probabilities(classifier.probabilities, batch, tta_mode))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        for (index, _), ids, p in zip(pending, order, probs):
            for rank, class_id in enumerate(ids, start=1):
                rows[index][f"class_{rank}"] = classifier.class_names[class_id]
                rows[index][f"prob_{rank}"] = float(p[class_id])
        pending.clear()

    for index, path in enumerate(files):
        try:
            pending.append((index, decode(path)))
        except (ValueError, OSError) as err:
            rows[index]["error"] = str(err) or type(err).__name__
        if len(pending) == _BATCH:
            flush()
        progress(index + 1)
    flush()
    columns = ["path"] + [f"{name}_{rank}" for rank in range(1, k + 1) for name in ("class", "prob")] + ["error"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["tta"] = tta.describe(tta_mode)
    return frame


def _check_tta(mode: str, classifier: Classifier) -> None:
    """Refuses a TTA mode the model's data forbid; prints what is not known."""
    for note in tta.check_tta(mode, classifier.data):
        print(f"note: {note}", file=sys.stderr)


def predict(run_dir: str, images, *, top: int = 5, progress_stream=None, class_names: str | None = None,
            tta_mode: str = "none"):
    """Classifies image files with a trained run or its export.

    Args:
        run_dir: a run directory (its ``model.keras``, loaded in safe mode) or a SavedModel
            export directory (`tfresnet.export.load_exported`).
        images: a file or folder, or a list of them; folders are walked recursively (hidden
            entries left out), every file in them getting a row.
        top: how many classes to report per file (at most the number of classes).
        progress_stream: where to show a counter while predicting, when it is a terminal
            (default: none).
        class_names: for a `.keras` file: a file of its class names (JSON list or one a line).
        tta_mode: test-time augmentation, a key of `tfresnet.using.tta.TTA_MODES`.

    Returns:
        A `pandas.DataFrame`, one row per file in the order given: ``path``, ``class_1``,
        ``prob_1``, ... ``class_K``, ``prob_K`` and ``error`` (empty, or why the file could not
        be used; its class and probability columns are then empty); ``frame.attrs["tta"]``
        says which views were averaged.

    Raises:
        FileNotFoundError: if `run_dir` is neither a run nor an export directory.
        ValueError: for a bad `top`, an unknown TTA mode, or one that mirrors images of data a
            mirror changes the class of (a run trained on MNIST).
    """
    top = _check_top(top)
    classifier = load_classifier(run_dir, class_names=class_names)
    _check_tta(tta_mode, classifier)
    files, _ = _expand(images)
    progress = _progress(len(files), progress_stream) if progress_stream is not None else (lambda done: None)
    return _predict(classifier, files, top, progress, tta_mode)


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``tfresnet predict`` arguments."""
    parser.add_argument("source", metavar="RUN_DIR|EXPORT_DIR|MODEL.keras",
                        help="training run directory (model.keras), SavedModel export directory or .keras file")
    parser.add_argument("images", metavar="IMAGE", nargs="+",
                        help="image files or folders (folders: every file under them, recursively)")
    parser.add_argument("--top", type=int, default=5, help="classes to show per image (default: 5)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--csv", default=None, metavar="PATH",
                        help=f"write the rows as CSV (default when a folder is given: {_DEFAULT_CSV} in "
                             f"the run directory, or beside the export or .keras file)")
    parser.add_argument("--class-names", default=None, metavar="FILE",
                        help="for a .keras file: its class names, a JSON list or one name per line "
                             "(default: class_names.json beside it; ImageNet's for 1000 outputs)")
    parser.add_argument("--tta", default="none", choices=list(tta.TTA_MODES),
                        help="test-time augmentation: average over the image and its mirror (flip), or also "
                             "four corner crops and their mirrors (flip+crops, 10 views); refused for "
                             "digits (default: none)")


def _table(frame, top: int) -> str:
    k = sum(c.startswith("class_") for c in frame.columns)
    lines = []
    for row in frame.to_dict(orient="records"):
        if row["error"]:
            lines.append(f"{row['path']}  error: {row['error']}")
            continue
        guesses = "  ".join(f"{row[f'class_{r}']} {row[f'prob_{r}']:.3f}" for r in range(1, min(k, top) + 1))
        lines.append(f"{row['path']}  {guesses}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Runs ``tfresnet predict``: 0, or 1 when no file could be classified."""
    top = _check_top(args.top)
    classifier = load_classifier(args.source, class_names=args.class_names)
    _check_tta(args.tta, classifier)
    files, any_folder = _expand(args.images)
    if not files:
        raise FileNotFoundError(f"No files under {', '.join(args.images)}.")
    frame = _predict(classifier, files, top, _progress(len(files), sys.stderr), args.tta)
    if args.json:
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        print(json.dumps(records, indent=1))
    else:
        print(_table(frame, top))
    csv_path = args.csv or (os.path.join(csv_folder(args.source), _DEFAULT_CSV) if any_folder else None)
    if csv_path:
        write_atomic(csv_path, frame.to_csv(index=False))
    failed = int((frame["error"] != "").sum())
    summary = f"{len(frame) - failed} of {len(frame)} files classified by {classifier.source} ({classifier.kind})"
    views = frame.attrs["tta"]["views"]
    summary += f" with --tta {args.tta} ({len(views)} views averaged)" if len(views) > 1 else ""
    summary += f"; {failed} could not be read" if failed else ""
    print(summary + (f"; rows written to {csv_path}" if csv_path else ""), file=sys.stderr)
    return 0 if failed < len(frame) else 1
