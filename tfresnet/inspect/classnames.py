"""Class names of a model to look inside: its run's, a file's, or ImageNet's for 1000 outputs.

Diagnostics print and draw class names ("tabby", not "281") and take them wherever a class id
goes. A run directory has its ``class_names.json``; a `.keras` file from elsewhere can be given a
file (``--class-names FILE``: a JSON list, or a text file of one name per line) or have a
``class_names.json`` beside it. A model with 1000 outputs and no other names is taken to be an
ImageNet classifier, as keras' ``decode_predictions`` assumes, and gets ImageNet's names (from
`tfresnet.models.pretrained`); offline without them it falls back to the class ids, with a note.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfresnet.models.pretrained import IMAGENET_CLASSES
from tfresnet.runs import RunDir

__all__ = ["ClassNames", "read_class_names", "class_names_for", "SIBLING_FILE"]

SIBLING_FILE = RunDir.CLASS_NAMES  # also looked for beside a .keras file


@dataclasses.dataclass
class ClassNames:
    """Names by class id, where they came from (``run``, ``file``, ``imagenet`` or None) and notes."""

    names: list
    origin: str | None
    notes: list


def read_class_names(path: str) -> list[str]:
    """Class names from a JSON list, or from a text file of one name per line (blank lines skipped).

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for JSON that is not a list of names.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Class-names file not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith(".json") or text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); give a JSON list of names or a text "
                             f"file of one name per line.") from None
        if not isinstance(names, list) or not all(isinstance(n, (str, int)) for n in names):
            raise ValueError(f"{path} must hold a JSON list of class names. Received {type(names).__name__}")
        return [str(n) for n in names]
    return [line.strip() for line in text.splitlines() if line.strip()]


def class_names_for(units: int, names=None, origin: str | None = None, *, where: str = "") -> ClassNames:
    """The names of a model's `units` outputs.

    Args:
        units: the model's number of outputs.
        names: names found for it (a run's, a file's), or None.
        origin: where `names` came from (``"run"``, ``"file"``).
        where: the file `names` came from, for the note when their count is wrong.

    Returns:
        `names` when there is one per output; else ImageNet's for 1000 outputs; else the ids.
    """
    notes = []
    if names is not None and len(names) == units:
        return ClassNames([str(n) for n in names], origin, notes)
    if names is not None:
        notes.append(f"{where or 'the class names'} list {len(names)} names for the model's {units} "
                     f"outputs: ignored, classes are shown by id")
    elif units == IMAGENET_CLASSES:
        from tfresnet.models.pretrained import ImageNetWeightsNotFound, imagenet_class_names

        try:
            return ClassNames(imagenet_class_names(), "imagenet", notes)
        except ImageNetWeightsNotFound as err:
            notes.append(f"the model has 1000 outputs, taken as ImageNet's classes, but their names "
                         f"are unavailable ({str(err).split('. ')[0]}): classes are shown by id")
    return ClassNames([str(i) for i in range(units)], None, notes)
