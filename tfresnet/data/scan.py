"""``tfresnet scan-data PATH``: validate an image dataset folder and report what a loader would do.

Runs the loaders' own indexing and validation (`tfresnet.data.images.validate_images`) on a
folder and prints: usable images per class and per split list, every file skipped (broken, not
an image) or not used (in no split list) with the reason, the files read through an RGB copy,
and image size, format and mode statistics. ``--json`` prints the same as one JSON object.

Layouts are recognised in this order: Oxford-IIIT Pet (``images/`` + ``annotations/``),
Microsoft PetImages (``Cat/`` + ``Dog/``), one sub-folder per class, and finally a plain folder
of images (no classes). ``--layout`` forces one.

Scanning checks but does not convert: nothing is written except the validation-result cache
(``--no-cache`` turns it off).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import sys
import time

import numpy as np

from tfresnet.console import progress_verbose
from tfresnet.data import cats_vs_dogs, folder, oxford_iiit_pet
from tfresnet.data.images import (
    IMAGE_EXTENSIONS,
    ImageCheck,
    check_image,
    validate_images,
)
from tfresnet.data.sources import FileIndex, FileIssue, IndexedFile

__all__ = ["LAYOUTS", "ScanReport", "add_arguments", "format_report", "run", "scan_directory"]


def _find_flat(path: str) -> str | None:
    return path if os.path.isdir(path) else None


def _index_flat(root: str) -> FileIndex:
    """A folder of images with no class structure: every image, recursively, in one class."""
    files, skipped = [], []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            path = os.path.join(directory, name)
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                files.append(IndexedFile(path, 0))
            else:
                skipped.append(FileIssue(path, check_image(path).reason))
    return FileIndex(root, "files", ("(no classes)",), files, skipped, pool_name="all images")


# Layout name -> (find_root(path) -> root or None, index_directory(root) -> FileIndex), in the
# order `scan_directory` tries them.
LAYOUTS = {
    "oxford_iiit_pet": (oxford_iiit_pet.find_root, oxford_iiit_pet.index_directory),
    "cats_vs_dogs": (cats_vs_dogs.find_root, cats_vs_dogs.index_directory),
    "folder": (folder.find_root, folder.index_directory),
    "files": (_find_flat, _index_flat),
}

_GROUP_NAMES = {"pool": "train + validation", "test": "test"}


@dataclasses.dataclass
class ScanReport:
    """The result of scanning one folder.

    Attributes:
        path: the folder given.
        root: the dataset root found in it.
        layout: the layout recognised (a key of `LAYOUTS`).
        class_names: class names in class-id order.
        usable: usable images per class name.
        groups: usable images per split list (``"train + validation"``, ``"test"``).
        absent: split -> why the layout lacks it.
        skipped: files not used because they are broken or not images (path relative to root).
        unused: files the layout does not use, e.g. images in no split list.
        notes: usable files with something notable (converted, renamed format, alpha).
        formats: usable images per format.
        modes: usable images per Pillow mode.
        sizes: width/height statistics of usable images (min, median, max).
        files_seen: files looked at.
        seconds: time the scan took.
    """

    path: str
    root: str
    layout: str
    class_names: list[str]
    usable: dict[str, int]
    groups: dict[str, int]
    absent: dict[str, str]
    skipped: list[FileIssue]
    unused: list[FileIssue]
    notes: list[FileIssue]
    formats: dict[str, int]
    modes: dict[str, int]
    sizes: dict[str, dict[str, float]]
    files_seen: int
    seconds: float

    @property
    def num_usable(self) -> int:
        return sum(self.usable.values())

    def to_dict(self) -> dict:
        """The report as JSON-serialisable data."""
        out = dataclasses.asdict(self)
        for key in ("skipped", "unused", "notes"):
            out[key] = [{"path": i.path, "reason": i.reason} for i in getattr(self, key)]
        out["num_usable"] = self.num_usable
        return out


def detect_layout(path: str, layout: str = "auto") -> tuple[str, str]:
    """Returns ``(layout name, dataset root)`` for a folder.

    Raises:
        ValueError: for an unknown layout name, or a path that does not match the forced one.
    """
    names = list(LAYOUTS) if layout == "auto" else [layout]
    for name in names:
        if name not in LAYOUTS:
            raise ValueError(f"Unknown layout {name!r}; expected 'auto' or one of {list(LAYOUTS)}.")
        root = LAYOUTS[name][0](path)
        if root is not None:
            return name, root
    raise ValueError(f"{path} does not look like the {layout!r} layout.")


def _stats(values) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(min(values)), "median": float(np.median(values)), "max": int(max(values))}


def scan_directory(
    path: str,
    *,
    layout: str = "auto",
    cache_dir: str | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress=None,
) -> ScanReport:
    """Indexes and validates a dataset folder the way the loaders do.

    Args:
        path: the folder.
        layout: ``"auto"`` or a key of `LAYOUTS`.
        cache_dir: tfresnet's cache directory (validation results); None for the default.
        use_cache: reuse and update cached validation results.
        workers: decoding threads.
        progress: ``progress(done, total)`` callback.

    Returns:
        A `ScanReport`.
    """
    start = time.perf_counter()
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Not a folder: {path}")
    name, root = detect_layout(path, layout)
    index = LAYOUTS[name][1](root)
    unused_images = [
        i.path for i in index.unused if os.path.splitext(i.path)[1].lower() in IMAGE_EXTENSIONS
    ]
    checks: dict[str, ImageCheck] = validate_images(
        [f.path for f in index.files] + unused_images,
        cache_dir=cache_dir,
        convert=False,
        use_cache=use_cache,
        workers=workers,
        progress=progress,
    )

    def rel(p: str) -> str:
        return os.path.relpath(p, root)

    usable = [f for f in index.files if checks[f.path].ok]
    used_checks = [checks[f.path] for f in usable]
    skipped = [FileIssue(rel(i.path), i.reason) for i in index.skipped] + [
        FileIssue(rel(f.path), checks[f.path].reason) for f in index.files if not checks[f.path].ok
    ]
    per_class = collections.Counter(index.class_names[f.label] for f in usable)
    return ScanReport(
        path=path,
        root=root,
        layout=name,
        class_names=list(index.class_names),
        usable={c: per_class.get(c, 0) for c in index.class_names},
        groups=dict(collections.Counter(_GROUP_NAMES[f.group] for f in usable)),
        absent=dict(index.absent),
        skipped=skipped,
        unused=[FileIssue(rel(i.path), i.reason + _unused_detail(checks.get(i.path))) for i in index.unused],
        notes=[FileIssue(rel(f.path), checks[f.path].note) for f in usable if checks[f.path].note],
        formats=dict(collections.Counter(c.format for c in used_checks).most_common()),
        modes=dict(collections.Counter(c.mode for c in used_checks).most_common()),
        sizes={
            "width": _stats([c.width for c in used_checks]),
            "height": _stats([c.height for c in used_checks]),
        },
        files_seen=len(index.files) + len(index.unused) + len(index.skipped),
        seconds=time.perf_counter() - start,
    )


def _unused_detail(check: ImageCheck | None) -> str:
    """What validation found out about an unused image: valid (and how), or broken too."""
    if check is None:
        return ""
    if not check.ok:
        return f"; also broken: {check.reason}"
    return f"; valid {check.format} {check.width}x{check.height}" + (f" ({check.note})" if check.note else "")


def _issue_lines(title: str, issues: list[FileIssue]) -> list[str]:
    if not issues:
        return [f"{title}: none"]
    width = min(max(len(i.path) for i in issues), 48)
    return [f"{title} ({len(issues)}):"] + [f"  {i.path:<{width}}  {i.reason}" for i in issues]


def format_report(report: ScanReport) -> str:
    """Renders a `ScanReport` as the text `tfresnet scan-data` prints."""
    listed = " listed" if report.layout == "oxford_iiit_pet" else ""
    lines = [
        f"Scanned {report.root} (layout: {report.layout}) in {report.seconds:.1f} s",
        (
            f"{report.files_seen:,} files: {report.num_usable:,} usable{listed} images of "
            f"{len(report.class_names)} classes, {len(report.unused)} not used, "
            f"{len(report.skipped)} skipped"
        ),
        "",
        "Usable images per class:",
    ]
    width = max((len(c) for c in report.class_names), default=0)
    lines += [f"  {c:<{width}}  {n:>7,}" for c, n in report.usable.items()]
    lines.append(
        "Split lists: "
        + ", ".join(f"{g} {n:,}" for g, n in report.groups.items())
        + "".join(f"; {s} absent ({why})" for s, why in report.absent.items() if s != "validation")
    )
    w, h = report.sizes["width"], report.sizes["height"]
    lines += [
        (
            f"Image sizes: width {w['min']}-{w['max']} (median {w['median']:g}), "
            f"height {h['min']}-{h['max']} (median {h['median']:g})"
        ),
        "Formats: " + ", ".join(f"{k} {v:,}" for k, v in report.formats.items())
        + "; modes: " + ", ".join(f"{k} {v:,}" for k, v in report.modes.items()),
        "",
    ]
    lines += _issue_lines("Skipped", report.skipped)
    lines += _issue_lines("Not used", report.unused)
    lines += _issue_lines("Used with a note", report.notes)
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``scan-data`` arguments."""
    parser.add_argument("path", help="dataset folder (Oxford-IIIT Pet, PetImages, class folders)")
    parser.add_argument(
        "--layout", default="auto", choices=["auto", *LAYOUTS], help="force a layout (default: auto)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads")
    parser.add_argument("--cache-dir", default=None, help="tfresnet cache directory")
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write cached validation results"
    )


def _progbar():
    import keras

    state = {}

    def update(done: int, total: int) -> None:
        if total == 0:
            return
        # Progress goes to stderr so that --json output on stdout stays parseable.
        with contextlib.redirect_stdout(sys.stderr):
            if "bar" not in state:
                # An animated bar on a terminal, one plain line when done in a pipe or file.
                state["bar"] = keras.utils.Progbar(total, unit_name="file",
                                                   verbose=progress_verbose(1, sys.stderr))
            state["bar"].update(done)

    return update


def run(args: argparse.Namespace) -> int:
    """Runs ``scan-data``; returns 0 if any image is usable, 1 if none.

    A bad path or option raises (`tfresnet.cli.run_command` makes it one line and exit code 2).
    """
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1. Received --workers {args.workers}")
    report = scan_directory(
        args.path,
        layout=args.layout,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        workers=args.workers,
        progress=_progbar(),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 0 if report.num_usable else 1
