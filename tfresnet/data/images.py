"""Image file validation: every file a loader might train on is decoded once before training.

Real image datasets carry broken files: Oxford-IIIT Pet has GIF and PNG files named `.jpg`, RGBA
and CMYK images, a truncated JPEG and `.mat` files beside the images; Microsoft's PetImages has
about 1,600 files that are not valid JPEGs. `validate_images` decodes each file completely with
Pillow (in a thread pool: Pillow releases the GIL while decoding) and decides:

- **used as is**: a JPEG (RGB or grayscale) or PNG (gray, palette, RGB, with or without alpha),
  whatever its extension. `tf.io.decode_image(..., channels=3)` reads these to the same RGB
  pixels as Pillow's ``convert("RGB")`` (alpha dropped, palette expanded, gray repeated).
- **used after conversion**: anything else Pillow decodes (GIF: first frame, CMYK/YCCK JPEG,
  BMP, TIFF, WebP, 16-bit PNG) is written once as an 8-bit RGB PNG into the cache directory
  (`default_cache_dir()`), and tf.data reads that copy. The original is never modified.
- **skipped**, with a reason: empty files, non-images (text, HTML, MATLAB `.mat`), files Pillow
  cannot identify, and truncated or corrupt files. `Image.load()` raises on a truncated file as
  long as `PIL.ImageFile.LOAD_TRUNCATED_IMAGES` stays False, which this module never changes.

Results are cached per directory in a JSON file keyed by each file's size and modification
time, so a second load of the same folder does not decode anything again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from tfresnet.files import write_atomic, write_json_atomic

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageCheck",
    "check_image",
    "default_cache_dir",
    "validate_images",
]

# Extensions a loader treats as image candidates; other files are reported and skipped.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
)

# Pillow format -> modes that tf.io.decode_image(channels=3) turns into the same RGB pixels.
_TF_NATIVE_MODES = {
    "JPEG": frozenset({"L", "RGB"}),
    "PNG": frozenset({"L", "LA", "P", "RGB", "RGBA"}),
}

_EXTENSION_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".gif": "GIF",
    ".bmp": "BMP", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
}

_CACHE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ImageCheck:
    """What validation found out about one file.

    Attributes:
        path: the file checked.
        ok: whether the file is used.
        reason: why it is skipped (empty when `ok`).
        format: Pillow's format name (``"JPEG"``, ``"PNG"``, ``"GIF"``, ...), or None.
        mode: Pillow's mode of the first frame (``"RGB"``, ``"L"``, ``"RGBA"``, ``"CMYK"``, ...).
        width: width in pixels (0 when unknown).
        height: height in pixels (0 when unknown).
        native: whether tf.io.decode_image reads the file as it is (False: through an RGB copy).
        decode_path: the file tf.data reads: `path` itself, or its RGB copy in the cache; empty
            when a copy is needed but validation ran without `convert_dir`.
        note: how a used file differs from a plain RGB JPEG (e.g. ``"GIF named .jpg, first
            frame of 3, converted to RGB"``); empty for plain files.
    """

    path: str
    ok: bool
    reason: str = ""
    format: str | None = None
    mode: str | None = None
    width: int = 0
    height: int = 0
    native: bool = True
    decode_path: str = ""
    note: str = ""

    @property
    def converted(self) -> bool:
        """Whether tf.data reads an RGB copy instead of the original file."""
        return self.ok and not self.native


def default_cache_dir() -> str:
    """Returns tfresnet's cache directory for converted images and validation results.

    ``$TFRESNET_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/tfresnet``, else ``~/.cache/tfresnet``.
    """
    if os.environ.get("TFRESNET_CACHE_DIR"):
        return os.path.abspath(os.path.expanduser(os.environ["TFRESNET_CACHE_DIR"]))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfresnet")


def _sniff(path: str) -> str:
    """Names what a non-image file most likely is, from its first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    if not head:
        return "empty file (0 bytes)"
    if head.startswith(b"MATLAB"):
        return "MATLAB data file"
    if head.startswith(b"%PDF"):
        return "PDF document"
    stripped = head.lstrip()
    if stripped[:1] == b"<":
        return "HTML/XML text"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    if printable / len(head) > 0.95:
        return "text file"
    return "unrecognised binary data"


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I") or im.mode == "F":
        # Pillow's I -> L conversion clips at 255; 16-bit images are rescaled the way
        # tf.io.decode_png(dtype=uint8) does (divide by 257).
        arr = np.asarray(im, dtype=np.float64)
        if arr.max(initial=0) > 255:
            arr = arr / 257.0
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    elif im.mode in ("P", "PA") and ("transparency" in im.info or im.mode == "PA"):
        # Through RGBA, as libpng does for tRNS palettes; avoids Pillow's transparency warning.
        im = im.convert("RGBA")
    return im.convert("RGB")


def _converted_path(path: str, stat: os.stat_result, convert_dir: str) -> str:
    key = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    return os.path.join(convert_dir, hashlib.sha1(key.encode()).hexdigest()[:24] + ".png")


def check_image(path: str, *, convert_dir: str | None = None) -> ImageCheck:
    """Decodes one file completely and decides whether (and how) it is used.

    Args:
        path: the file.
        convert_dir: where RGB copies of files tf.data cannot read as they are get written.
            None checks without converting: such files are then reported usable with an empty
            `decode_path` (enough for a report, not for training).

    Returns:
        An `ImageCheck`.
    """
    # Never set PIL.ImageFile.LOAD_TRUNCATED_IMAGES: load() must raise on truncated files.
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    try:
        stat = os.stat(path)
    except OSError as err:
        return ImageCheck(path, False, f"unreadable ({err.strerror or err})")
    if stat.st_size == 0:
        return ImageCheck(path, False, "empty file (0 bytes)")
    if ext not in IMAGE_EXTENSIONS:
        return ImageCheck(path, False, f"not an image ({ext or 'no extension'}): {_sniff(path)}")
    fmt = mode = None
    width = height = 0
    rgb = None
    try:
        with Image.open(path) as im:
            fmt, mode, (width, height) = im.format, im.mode, im.size
            frames = getattr(im, "n_frames", 1)
            # Decode every byte of the first frame: raises on truncated or corrupt data.
            im.load()
            native = mode in _TF_NATIVE_MODES.get(fmt, ())
            notes = []
            if _EXTENSION_FORMATS.get(ext) != fmt:
                notes.append(f"{fmt} named {ext}")
            if frames > 1:
                notes.append(f"first frame of {frames}")
            if native and mode in ("RGBA", "LA"):
                notes.append(f"{mode}, alpha dropped")
            decode_path = path
            if not native:
                notes.append(f"converted from {mode} to RGB")
                decode_path = ""
                if convert_dir is not None:
                    decode_path = _converted_path(path, stat, convert_dir)
                    if not os.path.exists(decode_path):
                        rgb = _to_rgb(im)
    except UnidentifiedImageError:
        return ImageCheck(path, False, f"not an image: {_sniff(path)} named {ext}")
    except Image.DecompressionBombError as err:
        return ImageCheck(path, False, f"too large to decode safely: {err}", fmt, mode, width, height)
    except Exception as err:
        # Malformed files make Pillow raise OSError mostly, but also SyntaxError, struct.error,
        # IndexError...: whatever the decoder trips on, the file is skipped, never fatal.
        what = f"{fmt} " if fmt else ""
        return ImageCheck(
            path, False, f"corrupt or truncated {what}image: {err}", fmt, mode, width, height
        )
    if rgb is not None:
        # Outside the try: a cache that cannot be written is an error to fix, not a bad image.
        try:
            write_atomic(decode_path, lambda partial: rgb.save(partial, "PNG", compress_level=1))
        except OSError as err:
            raise OSError(
                f"Cannot write the RGB copy of {path} into {convert_dir} ({err}). Point "
                f"$TFRESNET_CACHE_DIR or cache_dir= at a writable folder."
            ) from err
    return ImageCheck(
        path, True, "", fmt, mode, width, height, native, decode_path, ", ".join(notes)
    )


class _ScanCache:
    """Validation results of one directory, keyed by file name, size and mtime."""

    def __init__(self, cache_dir: str, directory: str):
        key = hashlib.sha1(os.path.abspath(directory).encode()).hexdigest()[:24]
        self.file = os.path.join(cache_dir, "scans", key + ".json")
        self.directory = os.path.abspath(directory)
        self.entries: dict = {}
        self.dirty = False
        try:
            with open(self.file) as f:
                data = json.load(f)
            if data.get("version") == _CACHE_VERSION and data.get("directory") == self.directory:
                self.entries = data["files"]
        except (OSError, ValueError, KeyError):
            pass  # no cache yet, or an unreadable one: validate again

    def get(self, path: str) -> ImageCheck | None:
        entry = self.entries.get(os.path.basename(path))
        if entry is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if [stat.st_size, stat.st_mtime_ns] != entry["stat"]:
            return None
        check = ImageCheck(path=path, **entry["check"])
        if check.ok and not check.native and not os.path.exists(check.decode_path):
            return None  # converted copy deleted from the cache: convert again
        # The original's location may differ from when the entry was written (a moved tree).
        if check.ok and check.native:
            check = dataclasses.replace(check, decode_path=path)
        return check

    def put(self, check: ImageCheck) -> None:
        if check.ok and not check.decode_path:
            return  # checked without converting: not reusable for training
        try:
            stat = os.stat(check.path)
        except OSError:
            return
        fields = dataclasses.asdict(check)
        del fields["path"]
        if check.native:
            fields["decode_path"] = ""  # the original itself; filled in by get()
        self.entries[os.path.basename(check.path)] = {
            "stat": [stat.st_size, stat.st_mtime_ns],
            "check": fields,
        }
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        payload = {"version": _CACHE_VERSION, "directory": self.directory, "files": self.entries}
        # A read-only cache only costs a re-validation next time.
        with contextlib.suppress(OSError):
            write_json_atomic(self.file, payload)


def validate_images(
    paths: Iterable[str],
    *,
    cache_dir: str | None = None,
    convert: bool = True,
    use_cache: bool = True,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, ImageCheck]:
    """Validates many files in parallel, reusing earlier results for unchanged files.

    Args:
        paths: the files to check.
        cache_dir: tfresnet's cache directory (converted copies and cached results go under
            it); None means `default_cache_dir()`.
        convert: write RGB copies of files tf.data cannot read as they are. A report-only
            scan may pass False.
        use_cache: read and update the per-directory result cache.
        workers: threads decoding in parallel; None picks from the CPU count.
        progress: called as ``progress(done, total)`` while checking.

    Returns:
        Path -> `ImageCheck`, in the order of `paths`.
    """
    paths = [os.fspath(p) for p in paths]
    cache_dir = cache_dir or default_cache_dir()
    convert_dir = os.path.join(cache_dir, "converted") if convert else None
    caches: dict[str, _ScanCache] = {}
    results: dict[str, ImageCheck] = {}
    todo = []
    for path in paths:
        directory = os.path.dirname(os.path.abspath(path))
        if use_cache and directory not in caches:
            caches[directory] = _ScanCache(cache_dir, directory)
        cached = caches[directory].get(path) if use_cache else None
        if cached is not None:
            results[path] = cached
        else:
            todo.append(path)
    total, done = len(paths), len(paths) - len(todo)
    if progress:
        progress(done, total)
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for check in pool.map(lambda p: check_image(p, convert_dir=convert_dir), todo):
            results[check.path] = check
            if use_cache:
                caches[os.path.dirname(os.path.abspath(check.path))].put(check)
            done += 1
            if progress:
                progress(done, total)
    for cache in caches.values():
        cache.save()
    return {path: results[path] for path in paths}
