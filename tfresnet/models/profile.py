"""Model size and cost: parameters and multiply-adds counted from the layers, and `list-models`.

Multiply-adds (MACs) count the convolutions and dense layers, which hold all but a fraction of a
percent of a CNN's arithmetic; batch norm, activations and pooling are left out, as in the
figures papers quote (e.g. 3.8 GFLOPs = 3.8 G multiply-adds for ResNet-50 in He et al. 2015,
Table 1, which are multiply-adds).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import keras

from tfresnet.models.common import iter_layers
from tfresnet.models.registry import create_model, get_model_spec, list_models

__all__ = ["count_macs", "profile_model", "model_table"]


def _spatial_size(shape) -> int:
    return math.prod(int(d) for d in shape[1:-1])


def count_macs(model: keras.Model) -> int:
    """Multiply-adds of one forward pass for one example, from each layer's output shape.

    Raises:
        ValueError: if the model's input has unknown height or width.
    """
    if any(d is None for d in model.input_shape[1:]):
        raise ValueError(
            f"count_macs needs a fixed input size. Received input_shape={model.input_shape}"
        )
    total = 0
    for layer in iter_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            out = layer.output.shape
            total += _spatial_size(out) * int(out[-1]) * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            out = layer.output.shape
            in_channels = int(layer.input.shape[-1]) // layer.groups
            total += _spatial_size(out) * int(out[-1]) * kh * kw * in_channels
        elif isinstance(layer, keras.layers.Dense):
            out = layer.output.shape
            total += math.prod(int(d) for d in out[1:]) * int(layer.input.shape[-1])
    return total


def profile_model(name: str, **kwargs) -> dict:
    """Builds a registered model and returns its name, family, input shape, parameters and MACs."""
    model = create_model(name, **kwargs)
    row = {
        "name": name,
        "family": get_model_spec(name).family,
        "input_shape": list(model.input_shape[1:]),
        "params": int(model.count_params()),
        "macs": int(count_macs(model)),
    }
    keras.backend.clear_session()
    return row


def _cache_path() -> Path:
    # Keyed by the source of the model code, so an edited builder never shows stale counts.
    digest = hashlib.sha1()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tfresnet"
    return root / f"model_profiles-{digest.hexdigest()[:12]}.json"


def matching_models(pattern: str | None) -> list[str]:
    """Names whose name or family matches `pattern` (so ``resnet`` also finds the plain twins,
    family ``resnet_plain``)."""
    if not pattern:
        return list_models()
    by_name = set(list_models(pattern))
    return [n for n in list_models() if n in by_name or pattern in get_model_spec(n).family]


def model_table(pattern: str | None = None, use_cache: bool = True) -> list[dict]:
    """Profiles every registered model whose name or family matches `pattern`, at its default input.

    Building the large models takes seconds each, so rows are cached on disk.
    """
    cache_file = _cache_path()
    cache = {}
    if use_cache and cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    rows = []
    for name in matching_models(pattern):
        if name not in cache:
            cache[name] = profile_model(name)
        rows.append(cache[name])
    if use_cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_text(json.dumps(cache, indent=1))
        except OSError:
            pass  # a read-only home only costs speed
    return rows


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default=None,
                        help="substring or shell wildcard of model names, or a family substring, "
                             "e.g. 'resnet' or 'vgg1?'")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every model")


def run(args) -> int:
    names = matching_models(args.pattern)
    if not names:
        print(f"No model matches {args.pattern!r}. Known: {', '.join(list_models())}")
        return 1
    rows = model_table(args.pattern, use_cache=not args.no_cache)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = f"{'name':<20} {'family':<18} {'input':<13} {'params':>12} {'MACs':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        shape = "x".join(str(d) for d in row["input_shape"])
        print(f"{row['name']:<20} {row['family']:<18} {shape:<13} {row['params']:>12,} "
              f"{_human(row['macs']):>9}")
    return 0
